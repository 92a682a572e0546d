"""The ledger as the authority delivery anchors on (shared.ledger), on an in-memory Table with etags
(tests/memory.py): conditional saves, so that two owners of a partition never undo each other's
records; counts that follow the records, so that a batch delivered twice is counted once; the
replay's claims; what is forgotten, and what an entity holds."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from azure.data.tables import TableTransactionError

from shared.counters import Counters
from shared.delivery import EMPTY, FORGOTTEN, FileState, Line
from shared.ledger import (
    CLAIM_SECONDS,
    ExportUpdate,
    FileRecord,
    FileUpdate,
    Hold,
    LedgerConflict,
    LedgerEntry,
    PartitionLedger,
    ReplayTurn,
    forget,
    from_entity,
    partition_key,
    read_all,
    read_partitions_of,
    row_key,
    settle,
    to_entity,
    turn_for_replay,
)
from tests.memory import MemoryTable

PK = partition_key("hub", "0")
KEY = ("proj", "lake")
END = 1_800_003_600.0  # when the files' hour ends
NOW = 1_800_000_000.0


def lines(numbers: Iterable[int]) -> list[Line]:
    return [(n, b'{"name":"s","n":%d}' % n) for n in numbers]


def size(numbers: Iterable[int]) -> int:
    return sum(len(data) + 1 for _, data in lines(numbers))


def written(file_key: str, numbers: Iterable[int], *, end: float = END) -> ExportUpdate:
    """A batch that wrote these signals to a file, whose record is then at their end."""
    batch = lines(numbers)
    state = FileState(size(range(batch[-1][0] + 1)), batch[-1][0])
    return ExportUpdate(files={file_key: FileUpdate(FileRecord(state, end), batch)})


def held(numbers: Iterable[int]) -> ExportUpdate:
    """A batch whose first write to file `f` failed: `f` held empty, its signals kept in backlog file `b`."""
    batch = lines(numbers)
    kept = FileState(size(range(batch[-1][0] + 1)), batch[-1][0])
    return ExportUpdate(
        files={
            "f": FileUpdate(FileRecord(EMPTY, END, Hold.HELD, NOW), batch),
            "b": FileUpdate(FileRecord(kept, END, of="f", at=0), batch, backlog=True),
        }
    )


def record(ledger: PartitionLedger, update: ExportUpdate, *, horizon: float = 0.0, last: int = 0) -> None:
    ledger.record({KEY: update}, horizon=horizon, last_sequence=last)


def saved(table: MemoryTable, key: tuple[str, str] = KEY) -> LedgerEntry:
    """The entry as the Table holds it now."""
    return from_entity(table.get_entity(PK, row_key(*key)))


def owner(table: MemoryTable) -> PartitionLedger:
    """An instance that owns the partition, with the entries as they are now in its cache."""
    ledger = PartitionLedger(table, PK)
    ledger.entries()
    return ledger


# -- two owners ---------------------------------------------------------------------------------------------


def test_two_owners_saving_at_once_keep_both_records_and_count_each_signal_once() -> None:
    """Both read the entry, both save: the second save meets the first (etag), reloads and joins, so
    neither's files are lost and every signal is counted once."""
    table = MemoryTable()
    record(PartitionLedger(table, PK), written("f1", [0]))
    a, b = owner(table), owner(table)
    record(a, written("f1", [1, 2]))
    record(b, written("f2", [0, 1]))
    entry = saved(table)
    assert entry.files["f1"].state == FileState(size(range(3)), 2)
    assert entry.files["f2"].state == FileState(size(range(2)), 1)
    assert entry.counters.exported == 5
    assert entry.counters.exported_bytes == size(range(3)) + size(range(2))


def test_a_stale_owners_record_never_takes_a_file_back() -> None:
    """An owner whose cache predates the other's longer record saves a shorter state of the same file:
    the ledger keeps the longer one, and the lines both wrote are counted once."""
    table = MemoryTable()
    record(PartitionLedger(table, PK), written("f", [0]))
    a, b = owner(table), owner(table)
    record(a, written("f", [1, 2, 3]))
    record(b, written("f", [1, 2]))
    entry = saved(table)
    assert entry.files["f"].state == FileState(size(range(4)), 3)
    assert entry.counters.exported == 4


def test_an_owner_keeps_saving_after_the_other_owner_saved() -> None:
    """After a conflict the owner's cache holds the entry it saved: its next batch saves at once."""
    table = MemoryTable()
    record(PartitionLedger(table, PK), written("f", [0]))
    a, b = owner(table), owner(table)
    record(a, written("f", [1]), last=1)
    record(b, written("g", [0]), last=1)
    before = table.requests
    b.begin(2)
    record(b, written("g", [1, 2]), last=2)
    assert table.requests == before + 1, "one transaction, no reload"
    assert saved(table).files.keys() == {"f", "g"}


def test_saves_that_keep_meeting_changes_give_up_and_drop_the_cache() -> None:
    """Five conflicts in a row: LedgerConflict (the batch is retried), and the next batch reloads."""
    table = MemoryTable()
    ledger = owner(table)

    def always_changed(when: str, op: str) -> None:
        if op == "transaction":
            raise TableTransactionError(message="UpdateConditionNotSatisfied")

    table.fault = always_changed
    with pytest.raises(LedgerConflict, match=f"ledger of {PK} kept changing"):
        record(ledger, written("f", [0]))
    transactions = table.requests
    table.fault = lambda when, op: None
    ledger.begin(1)
    record(ledger, written("f", [0]))
    assert table.requests == transactions + 2, "reloaded (a query), then saved"
    assert saved(table).counters.exported == 1


# -- counts follow the records ------------------------------------------------------------------------------


def test_a_batch_delivered_twice_is_counted_once() -> None:
    """The same batch recorded again (a redelivery) counts nothing; one cut differently counts only what it adds."""
    table = MemoryTable()
    ledger = PartitionLedger(table, PK)
    record(ledger, written("f", range(5)))
    record(PartitionLedger(table, PK), written("f", range(5)))
    assert saved(table).counters.exported == 5
    record(PartitionLedger(table, PK), written("f", range(3, 8)))
    entry = saved(table)
    assert (entry.counters.exported, entry.counters.exported_bytes) == (8, size(range(8)))
    record(PartitionLedger(table, PK), written("f", range(7, 10)))  # starts at the recorded signal
    assert saved(table).counters.exported == 10


def test_only_the_lines_a_record_moved_past_are_counted() -> None:
    """A write that got through part of the batch (its record ends within it) counts that part only; a
    record that grew past foreign bytes without a later signal counts nothing."""
    table = MemoryTable()
    batch = lines(range(10))
    partial = ExportUpdate(files={"f": FileUpdate(FileRecord(FileState(size(range(4)), 3), END), batch)})
    record(PartitionLedger(table, PK), partial)
    assert (saved(table).counters.exported, saved(table).counters.exported_bytes) == (4, size(range(4)))
    stepped_over = ExportUpdate(files={"f": FileUpdate(FileRecord(FileState(10_000, 1), END), batch)})
    record(PartitionLedger(table, PK), stepped_over)
    entry = saved(table)
    assert entry.files["f"].state == FileState(10_000, 1)
    assert (entry.counters.exported, entry.counters.exported_bytes) == (4, size(range(4)))


def test_a_redelivered_batch_counts_its_backlogged_signals_once() -> None:
    """Signals kept in the backlog are counted as backlogged once, however often their batch comes again."""
    table = MemoryTable()
    record(PartitionLedger(table, PK), held(range(5)))
    record(PartitionLedger(table, PK), held(range(5)))
    record(PartitionLedger(table, PK), held(range(2, 7)))
    counters = saved(table).counters
    assert (counters.backlogged, counters.exported) == (7, 0)


def test_the_encoded_size_is_counted_when_the_whole_batch_is_new() -> None:
    """A batch's bytes come from its payload when every line counts, from the lines otherwise."""
    table = MemoryTable()
    update = written("f", range(3))
    update.files["f"].payload_bytes = 1234  # what the payload measured (the lines' bytes, on the real path)
    record(PartitionLedger(table, PK), update)
    assert saved(table).counters.exported_bytes == 1234
    again = written("f", range(2, 5))
    again.files["f"].payload_bytes = 999
    record(PartitionLedger(table, PK), again)
    assert saved(table).counters.exported_bytes == 1234 + size(range(5)) - size(range(3))


def test_a_record_that_does_not_advance_counts_nothing() -> None:
    """A held file's record stays where it was: the batch's lines for it are not exported."""
    table = MemoryTable()
    record(PartitionLedger(table, PK), written("f", range(3)))
    at = FileState(size(range(3)), 2)
    stuck = ExportUpdate(files={"f": FileUpdate(FileRecord(at, END, Hold.HELD, NOW), lines(range(5)))})
    record(PartitionLedger(table, PK), stuck)
    entry = saved(table)
    assert entry.counters.exported == 3
    assert entry.files["f"].state == at and entry.files["f"].hold is Hold.HELD


def test_dropped_signals_are_counted_once_by_sequence_number() -> None:
    """A disabled export's dropped signals count once, a redelivery's again-dropped ones not."""
    table = MemoryTable()
    record(PartitionLedger(table, PK), ExportUpdate(dropped=[5, 6, 7]))
    record(PartitionLedger(table, PK), ExportUpdate(dropped=[5, 6, 7]))
    record(PartitionLedger(table, PK), ExportUpdate(dropped=[6, 7, 8, 9]))
    entry = saved(table)
    assert (entry.counters.dropped, entry.dropped_through) == (5, 9)


def test_write_attempts_add_up_and_a_batch_with_nothing_to_record_saves_nothing() -> None:
    """Attempts are added as they are; an update with no file, attempt or drop makes no request."""
    table = MemoryTable()
    ledger = owner(table)
    record(ledger, ExportUpdate(attempts=Counters(writes_ok=2, writes_failed=1, failed={"throttled": 4})))
    record(ledger, ExportUpdate(attempts=Counters(writes_ok=1)))
    counters = saved(table).counters
    assert (counters.writes_ok, counters.writes_failed, counters.failed) == (3, 1, {"throttled": 4})
    before = table.requests
    record(ledger, ExportUpdate())
    assert table.requests == before


# -- the cache ------------------------------------------------------------------------------------------------


def test_the_cache_is_kept_for_the_next_batch_and_reloaded_for_any_other() -> None:
    """A batch that follows the last one saved uses the cache; a redelivery or a gap reloads (one query)."""
    table = MemoryTable()
    ledger = PartitionLedger(table, PK)
    ledger.begin(0)
    record(ledger, written("f", [0, 1]), last=1)
    queries = table.requests
    ledger.begin(2)
    ledger.entries()
    assert table.requests == queries
    for first in (1, 5, 0):
        ledger.begin(first)
        ledger.entries()
        ledger.entries()
        assert table.requests == queries + 1
        queries = table.requests
    ledger.forget()
    ledger.begin(2)
    ledger.entries()
    assert table.requests == queries + 1


def test_an_owner_that_regains_a_partition_sees_the_other_owners_records() -> None:
    """A's cache says f is at 0; B wrote on; A gets the partition back after B's batches and reloads."""
    table = MemoryTable()
    a = PartitionLedger(table, PK)
    a.begin(0)
    record(a, written("f", [0]), last=0)
    b = PartitionLedger(table, PK)
    b.begin(1)
    record(b, written("f", [1, 2]), last=2)
    a.begin(3)
    assert a.entries()[KEY].files["f"].state.last_sequence == 2


def test_a_fresh_read_updates_the_cache_so_the_batch_saves_against_it() -> None:
    """fresh() reads one entity (one request) and the cache takes it: the batch's save then succeeds at once."""
    table = MemoryTable()
    record(PartitionLedger(table, PK), written("f", [0]))
    stale = owner(table)
    record(PartitionLedger(table, PK), written("f", [1]))
    before = table.requests
    entry = stale.fresh(KEY)
    assert entry.files["f"].state.last_sequence == 1 and table.requests == before + 1
    record(stale, written("f", [2]))
    assert table.requests == before + 2, "saved without meeting a conflict"
    assert saved(table).counters.exported == 3
    assert stale.fresh(("proj", "unknown")) == LedgerEntry()


# -- what is forgotten ----------------------------------------------------------------------------------------


def test_files_of_buckets_that_ended_before_the_horizon_are_forgotten() -> None:
    """A file whose bucket ended before the horizon leaves the entry, and the ledger answers FORGOTTEN for it
    (a stale redelivery writes nothing); a bucket ending at the horizon is kept; the horizon never goes back."""
    table = MemoryTable()
    ledger = PartitionLedger(table, PK)
    record(ledger, written("old", [0], end=END - 3600))
    record(ledger, written("edge", [1], end=END))
    record(ledger, written("new", [2], end=END + 3600), horizon=END)
    entry = saved(table)
    assert entry.files.keys() == {"edge", "new"} and entry.horizon == END
    assert entry.lookup("old", END - 3600) is FORGOTTEN
    assert entry.lookup("other", END) is None
    assert entry.lookup("edge", END) == entry.files["edge"]
    record(ledger, written("new", [3], end=END + 3600), horizon=END - 7200)
    assert saved(table).horizon == END


def test_an_entry_exactly_at_its_size_limit_forgets_nothing() -> None:
    """7,500 files of 32-character keys are exactly the entity budget (600,000 characters): all kept."""
    table = MemoryTable()
    ledger = PartitionLedger(table, PK)
    for minute in range(2):
        files = {
            f"{minute:02d}{n:030d}": FileUpdate(FileRecord(FileState(1, n), END + 60 * minute), [])
            for n in range(3750)
        }
        record(ledger, ExportUpdate(files=files))
    entry = saved(table)
    assert len(entry.files) == 7500 and entry.horizon == 0.0


def test_an_entry_stays_within_the_entity_limit_by_forgetting_older_buckets_first() -> None:
    """Thousands of files in flight (a Blob export with many names): the oldest buckets go first, the
    batch's own files always stay, and the horizon moves past what was forgotten."""
    table = MemoryTable()
    ledger = PartitionLedger(table, PK)
    per_minute = 3000  # 24-character keys: 3,000 files a minute fill the entity in under 3 minutes
    for minute in range(4):
        end = END + 60 * minute
        files = {
            f"{minute:04d}{n:020d}": FileUpdate(FileRecord(FileState(10, n), end), [])
            for n in range(per_minute)
        }
        record(ledger, ExportUpdate(files=files))
        entry = saved(table)
        assert files.keys() <= entry.files.keys()
        assert sum(len(key) + 48 for key in entry.files) <= 600_000
    entry = saved(table)
    assert {record.bucket_end for record in entry.files.values()} == {END + 120, END + 180}
    assert END + 60 < entry.horizon <= END + 120
    assert entry.lookup("0000" + "0" * 20, END) is FORGOTTEN


# -- the replay's claims -------------------------------------------------------------------------------------


def held_file(table: MemoryTable, since: float = NOW, hold: Hold = Hold.HELD, end: float = END) -> None:
    """File `f` held at 0, its signals 0-4 in backlog file `b` (as the export path records it)."""
    update = held(range(5))
    update.files["f"] = FileUpdate(FileRecord(FileState(0, -1), end, hold, since), [])
    record(PartitionLedger(table, PK), update)


def test_a_catch_up_claims_only_held_files() -> None:
    """claim() marks held files CATCHING (saved before anything is appended); a live or unknown file is
    returned as it is, and nothing is saved for it."""
    table = MemoryTable()
    held_file(table)
    record(PartitionLedger(table, PK), written("g", [0]))
    ledger = owner(table)
    claimed = ledger.claim({KEY: ["f", "g", "missing"]}, NOW + 5)
    assert claimed[KEY]["f"] == FileRecord(FileState(0, -1), END, Hold.CATCHING, NOW + 5)
    assert claimed[KEY]["g"] is not None and claimed[KEY]["g"].hold is Hold.LIVE
    assert claimed[KEY]["missing"] is None
    assert saved(table).files["f"].hold is Hold.CATCHING
    before = table.requests
    ledger.claim({KEY: ["g"]}, NOW + 6)
    assert table.requests == before, "nothing to claim: nothing saved"


def test_a_catch_up_and_the_replay_never_both_take_a_held_file() -> None:
    """The replay closes the file between the catch-up's read and its claim: the claim's save meets the
    change, reloads, and sees the file CLOSED: the catch-up does not append the backlog."""
    table = MemoryTable()
    held_file(table, end=NOW)  # the bucket is over: the replay closes the file
    ledger = owner(table)
    assert turn_for_replay(table, PK, KEY, "f", NOW + 10)[0] is ReplayTurn.REPLAY
    claimed = ledger.claim({KEY: ["f"]}, NOW + 11)
    assert claimed[KEY]["f"] is not None and claimed[KEY]["f"].hold is Hold.CLOSED
    assert saved(table).files["f"].hold is Hold.CLOSED


def test_the_replay_catches_up_a_current_file_and_closes_one_whose_bucket_ended() -> None:
    """A held file whose bucket is current is claimed for a catch-up; one whose bucket ended is closed and
    replayed elsewhere; a live, closed or unknown file is replayed elsewhere, unchanged."""
    table = MemoryTable()
    held_file(table)
    turn, claimed = turn_for_replay(table, PK, KEY, "f", NOW + 10)
    assert turn is ReplayTurn.CATCH_UP
    assert claimed == FileRecord(FileState(0, -1), END, Hold.CATCHING, NOW + 10)
    assert saved(table).files["f"] == claimed
    late = MemoryTable()
    held_file(late)
    turn, closed = turn_for_replay(late, PK, KEY, "f", END)
    assert turn is ReplayTurn.REPLAY and closed is not None and closed.hold is Hold.CLOSED
    assert saved(late).files["f"].hold is Hold.CLOSED
    assert turn_for_replay(late, PK, KEY, "f", END + 1) == (ReplayTurn.REPLAY, saved(late).files["f"])
    record(PartitionLedger(late, PK), written("g", [0]))
    assert turn_for_replay(late, PK, KEY, "g", END)[0] is ReplayTurn.REPLAY
    assert turn_for_replay(late, PK, KEY, "missing", END) == (ReplayTurn.REPLAY, None)
    assert turn_for_replay(MemoryTable(), PK, KEY, "f", END) == (ReplayTurn.REPLAY, None)


def test_the_replay_waits_while_a_catch_up_claim_is_fresh() -> None:
    """A catch-up claimed the file less than CLAIM_SECONDS ago: wait; after that, its writer is gone for sure."""
    table = MemoryTable()
    held_file(table, since=NOW, hold=Hold.CATCHING)
    assert turn_for_replay(table, PK, KEY, "f", NOW + CLAIM_SECONDS - 1)[0] is ReplayTurn.WAIT
    assert saved(table).files["f"].hold is Hold.CATCHING
    turn, record_after = turn_for_replay(table, PK, KEY, "f", NOW + CLAIM_SECONDS)
    assert (
        turn is ReplayTurn.CATCH_UP and record_after is not None and record_after.since == NOW + CLAIM_SECONDS
    )


def test_the_replays_save_is_conditional_and_retried() -> None:
    """A live writer saves between the replay's read and its save: the replay's save fails on the etag,
    and it decides again on the entry as it is now."""
    table = MemoryTable()
    held_file(table)
    interfered = []

    def writer_saves_first(when: str, op: str) -> None:
        if when == "before" and op == "transaction" and not interfered:
            interfered.append(1)
            table.fault = lambda when, op: None
            later = FileRecord(FileState(40, 9), END, Hold.HELD, NOW + 5)
            update = ExportUpdate(files={"f": FileUpdate(later, lines(range(5, 10)))})
            record(PartitionLedger(table, PK), update)

    table.fault = writer_saves_first
    turn, after = turn_for_replay(table, PK, KEY, "f", NOW + 10)
    assert interfered and after is not None
    assert after.state == FileState(40, 9), "decided on the writer's record, not the one read first"
    assert turn is ReplayTurn.CATCH_UP and saved(table).files["f"] == after


def test_the_replay_gives_up_when_the_entry_keeps_changing() -> None:
    """Five changes in a row under the replay: LedgerConflict (the work item is retried later)."""
    table = MemoryTable()
    held_file(table)

    def always_changed(when: str, op: str) -> None:
        if op == "transaction":
            raise TableTransactionError(message="UpdateConditionNotSatisfied")

    claimer = owner(table)
    table.fault = always_changed
    with pytest.raises(LedgerConflict, match=f"ledger of {PK} kept changing under the replay"):
        turn_for_replay(table, PK, KEY, "f", NOW + 10)
    with pytest.raises(LedgerConflict, match=f"ledger of {PK} kept changing under the replay"):
        settle(table, PK, KEY, "f", FileRecord(FileState(90, 4), END, Hold.LIVE, NOW))
    with pytest.raises(LedgerConflict, match=f"ledger of {PK} kept changing under this instance"):
        claimer.claim({KEY: ["f"]}, NOW + 10)


def test_settling_a_catch_up_joins_its_outcome_with_the_record() -> None:
    """The replay's catch-up ends live at a longer state; a shorter outcome never takes the record back."""
    table = MemoryTable()
    held_file(table, hold=Hold.CATCHING)
    done = FileRecord(FileState(90, 4), END, Hold.LIVE, NOW + 20)
    settle(table, PK, KEY, "f", done)
    assert saved(table).files["f"] == FileRecord(FileState(90, 4), END)  # live: no time kept
    settle(table, PK, KEY, "f", FileRecord(FileState(0, -1), END, Hold.HELD, NOW + 30))
    assert saved(table).files["f"].state == FileState(90, 4)
    settle(table, PK, KEY, "new", done)
    assert saved(table).files["new"] == FileRecord(FileState(90, 4), END)
    settle(MemoryTable(), PK, KEY, "f", done)  # the export's entry is gone: nothing to settle


# -- records -------------------------------------------------------------------------------------------------


def test_the_later_of_two_records_wins_and_a_hold_is_not_released_by_an_equal_state() -> None:
    """Longer wins; at one state a closed file stays closed and a held one held; a claim and its outcome
    are ordered by time; the later bucket end and the backlog's live file are kept."""
    state = FileState(10, 3)
    live = FileRecord(state, END)
    longer = FileRecord(FileState(20, 5), END - 60)
    assert live.join(longer) == FileRecord(FileState(20, 5), END)
    assert longer.join(live) == FileRecord(FileState(20, 5), END)
    closed = FileRecord(state, END, Hold.CLOSED, NOW)
    heldr = FileRecord(state, END, Hold.HELD, NOW)
    assert live.join(heldr).hold is Hold.HELD and heldr.join(live).hold is Hold.HELD
    assert heldr.join(closed).hold is Hold.CLOSED and closed.join(heldr).hold is Hold.CLOSED
    catching = FileRecord(state, END, Hold.CATCHING, NOW + 1)
    assert heldr.join(catching) == catching and catching.join(heldr) == catching
    later_hold = FileRecord(state, END, Hold.HELD, NOW + 2)
    assert catching.join(later_hold) == later_hold
    assert FileRecord(state, END, of="f", at=7).join(live) == FileRecord(state, END, of="f", at=7)
    assert FileRecord(FileState(10, 4), END).join(live).state == FileState(10, 4)


def test_a_live_file_stays_held_while_a_backlog_file_holds_a_later_signal() -> None:
    """Two owners held the file at different positions; the one that went on writing has the longer
    record, but a signal only the other's backlog holds must be written first: the file stays held."""
    table = MemoryTable()
    update = held(range(5))
    update.files["f"] = FileUpdate(FileRecord(FileState(size(range(3)), 2), END), lines(range(3)))
    record(PartitionLedger(table, PK), update)
    assert saved(table).files["f"].hold is Hold.HELD
    caught_up = MemoryTable()
    update = held(range(5))
    update.files["f"] = FileUpdate(FileRecord(FileState(size(range(5)), 4), END), lines(range(5)))
    record(PartitionLedger(caught_up, PK), update)
    assert saved(caught_up).files["f"].hold is Hold.LIVE


def test_a_live_file_is_held_until_its_record_covers_the_latest_signal_of_every_backlog_file() -> None:
    """Two backlog files of one live file, the later signal in the first: held while the record is
    short of it. A record that covers exactly the backlog's last signal (sequence 0) releases the file."""
    table = MemoryTable()
    update = ExportUpdate(
        files={
            "f": FileUpdate(FileRecord(FileState(size(range(3)), 2), END), lines(range(3))),
            "b1": FileUpdate(
                FileRecord(FileState(size(range(4)), 3), END, of="f"), lines(range(4)), backlog=True
            ),
            "b2": FileUpdate(
                FileRecord(FileState(size(range(2)), 1), END, of="f"), lines(range(2)), backlog=True
            ),
        }
    )
    record(PartitionLedger(table, PK), update)
    assert saved(table).files["f"].hold is Hold.HELD
    first = MemoryTable()
    update = ExportUpdate(
        files={
            "f": FileUpdate(FileRecord(FileState(size(range(1)), 0), END), lines(range(1))),
            "b": FileUpdate(
                FileRecord(FileState(size(range(1)), 0), END, of="f"), lines(range(1)), backlog=True
            ),
        }
    )
    record(PartitionLedger(first, PK), update)
    assert saved(first).files["f"].hold is Hold.LIVE


def test_an_entry_reads_back_as_it_was_saved() -> None:
    """Records of every kind, counters, horizon and drops survive the entity; long file lists span
    several properties of at most 30,000 characters."""
    files = {
        f"{n:024d}": FileRecord(FileState(n * 10, n), END + n, Hold(n % 4), NOW + n if n % 4 else 0.0)
        for n in range(800)
    }
    files["backlog"] = FileRecord(FileState(50, 7), END, Hold.LIVE, 0.0, of=f"{3:024d}", at=30)
    entry = LedgerEntry(files, Counters(exported=5, failed={"rejected": 2}, last_error="X"), END - 10, 41)
    entity = to_entity(PK, *KEY, entry)
    assert entity["PartitionKey"] == PK and entity["RowKey"] == "proj|lake"
    assert entity["parts"] > 1 and all(len(entity[f"files{i}"]) <= 30_000 for i in range(entity["parts"]))
    table = MemoryTable()
    table.submit_transaction([("create", entity)])
    back = saved(table)
    assert (back.files, back.counters, back.horizon, back.dropped_through) == (
        files,
        entry.counters,
        END - 10,
        41,
    )
    assert back.etag == table.etags[(PK, "proj|lake")]
    empty = to_entity(PK, *KEY, LedgerEntry())
    assert empty["parts"] == 1
    table.submit_transaction([("create", {**empty, "RowKey": "proj|empty"})])
    assert saved(table, ("proj", "empty")) == LedgerEntry(etag=table.etags[(PK, "proj|empty")])


def test_a_batch_touching_many_exports_is_saved_in_transactions_of_at_most_100() -> None:
    """150 exports in one batch: two transactions (MemoryTable refuses more than 100 operations), all saved."""
    table = MemoryTable()
    ledger = PartitionLedger(table, PK)
    updates = {("proj", f"e{n}"): written("f", [n]) for n in range(150)}
    ledger.entries()
    before = table.requests
    ledger.record(updates, horizon=0.0, last_sequence=0)
    assert table.requests == before + 2
    assert all(saved(table, key).files["f"].state.last_sequence == n for n, key in enumerate(updates))


def test_a_transaction_that_conflicts_does_not_keep_the_next_from_being_saved() -> None:
    """150 exports; the first transaction of 100 meets a change: the other 50 are saved all the same, and
    the first 100 once the ledger is read again. None is lost."""
    table = MemoryTable()
    ledger = PartitionLedger(table, PK)
    updates = {("proj", f"e{n}"): written("f", [n]) for n in range(150)}
    ledger.entries()
    transactions = iter(range(1_000))

    def first_conflicts(when: str, op: str) -> None:
        if (when, op) == ("before", "transaction") and next(transactions) == 0:
            raise TableTransactionError(message="UpdateConditionNotSatisfied")

    table.fault = first_conflicts
    ledger.record(updates, horizon=0.0, last_sequence=0)
    assert all(saved(table, key).files["f"].state.last_sequence == n for n, key in enumerate(updates))


def test_every_partitions_entry_of_an_export_is_read_and_forgotten_together() -> None:
    """read_all gives each export's entries across partitions; forget deletes one export's everywhere."""
    table = MemoryTable()
    for partition in ("0", "1"):
        ledger = PartitionLedger(table, partition_key("hub", partition))
        ledger.record(
            {KEY: written("f", [0]), ("proj", "blob"): written("g", [1])}, horizon=0.0, last_sequence=0
        )
    everything = read_all(table)
    assert {key: [sorted(entry.files) for entry in entries] for key, entries in everything.items()} == {
        KEY: [["f"], ["f"]],
        ("proj", "blob"): [["g"], ["g"]],
    }
    assert [entry.files.keys() for entry in read_partitions_of(table, *KEY)] == [{"f"}, {"f"}]
    forget(table, *KEY)
    assert read_partitions_of(table, *KEY) == []
    assert list(read_all(table)) == [("proj", "blob")]
    assert partition_key("hub", "12") == "hub-12" and row_key("p", "e") == "p|e"
