"""The ledger (shared.ledger): file records that only move forward whoever saves them and in whatever
order, signals counted once however often a batch is recorded, and entries that survive their row.

Pure, or over tests.memory.MemoryTable (etags and all-or-nothing transactions, as Table Storage)."""

from __future__ import annotations

from dataclasses import replace

from azure.data.tables import TransactionOperation
from hypothesis import given
from hypothesis import strategies as st

from shared.counters import Counters
from shared.delivery import FileState, Line
from shared.ledger import (
    ExportUpdate,
    FileRecord,
    FileUpdate,
    Hold,
    LedgerEntry,
    PartitionLedger,
    from_entity,
    to_entity,
)
from shared.outcomes import Cause
from tests.memory import MemoryTable

PARTITION = "hub-0"
EXPORT = ("project", "export")
BUCKET_END = 1_800_000_000.0
LIVE, HELD, CATCHING, CLOSED = Hold.LIVE, Hold.HELD, Hold.CATCHING, Hold.CLOSED


@st.composite
def views(draw: st.DrawFn, count: int) -> list[FileRecord]:
    """`count` views of one file, as owners and the replay save them: states from the file's history
    (it only grows, and a longer view accounts for at least the signals of a shorter one), any hold,
    and no two views made at the same instant. A backlog file's views name the live file and position
    it holds signals for (its name says so: the same in every view)."""
    history = [FileState(0, -1)]
    for grow, signals in draw(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3)), max_size=5)):
        last = history[-1]
        history.append(FileState(last.length + grow, last.last_sequence + signals))
    of, at = draw(st.sampled_from([("", 0), ("a1b2c3", 120)]))
    times = draw(st.lists(st.floats(0, 2e9), min_size=count, max_size=count, unique=True))
    return [
        FileRecord(
            draw(st.sampled_from(history)),
            draw(st.sampled_from([BUCKET_END, BUCKET_END + 3600])),
            draw(st.sampled_from(list(Hold))),
            since,
            of,
            at,
        )
        for since in times
    ]


def acted_on(record: FileRecord) -> tuple[object, ...]:
    """What the service decides by: the state, the bucket's end, the hold, the name of what a backlog
    file holds, and the time of a hold that can expire (a catch-up's claim against the replay's). The
    time of a live or closed record decides nothing, and a live record's is not even saved
    (`to_entity`)."""
    since = record.since if record.hold in (HELD, CATCHING) else None
    return (record.state, record.bucket_end, record.hold, since, record.of, record.at)


@given(views(2))
def test_joining_two_views_of_a_file_gives_the_same_view_in_either_order(pair: list[FileRecord]) -> None:
    """Two owners' views joined after a conflict: the same whichever saved first."""
    a, b = pair
    assert acted_on(a.join(b)) == acted_on(b.join(a))


@given(views(3))
def test_joining_views_of_a_file_in_any_grouping_gives_the_same_view(triple: list[FileRecord]) -> None:
    """A batch joined into a reloaded entry that already joined another's: the grouping does not matter."""
    a, b, c = triple
    assert acted_on(a.join(b).join(c)) == acted_on(a.join(b.join(c)))


@given(views(1))
def test_joining_a_view_with_itself_changes_nothing(single: list[FileRecord]) -> None:
    """A batch recorded again over its own record leaves it exactly as it was."""
    (a,) = single
    assert a.join(a) == a


@given(views(2))
def test_a_joined_view_never_goes_backwards(pair: list[FileRecord]) -> None:
    """Files only grow: the joined view is at least as long, accounts for at least as many signals,
    and ends its bucket no earlier than either view."""
    a, b = pair
    joined = a.join(b)
    assert joined.state.length >= max(a.state.length, b.state.length)
    assert joined.state.last_sequence >= max(a.state.last_sequence, b.state.last_sequence)
    assert joined.bucket_end == max(a.bucket_end, b.bucket_end)
    assert joined.state in (a.state, b.state)


def test_at_one_state_a_closed_or_held_file_stays_so_after_a_live_view() -> None:
    """A live writer that had nothing to write records the state it found: it never reopens a file the
    replay closed, nor releases one a failed write held."""
    state = FileState(120, 7)
    live = FileRecord(state, BUCKET_END, LIVE, since=500.0)
    for hold in (CLOSED, HELD):
        kept = FileRecord(state, BUCKET_END, hold, since=100.0)
        assert kept.join(live).hold is hold and live.join(kept).hold is hold
    longer = FileRecord(FileState(180, 9), BUCKET_END, LIVE, since=50.0)
    assert FileRecord(state, BUCKET_END, HELD, since=100.0).join(longer) == longer  # written past the hold


def test_a_claim_and_its_outcome_are_ordered_by_when_they_were_made() -> None:
    """A catch-up's claim after the hold wins over it; the file held again after the claim (the
    catch-up failed) wins over the claim."""
    state = FileState(120, 7)
    held = FileRecord(state, BUCKET_END, HELD, since=100.0)
    claimed = FileRecord(state, BUCKET_END, CATCHING, since=200.0)
    held_again = FileRecord(state, BUCKET_END, HELD, since=300.0)
    assert held.join(claimed) == claimed == claimed.join(held)
    assert claimed.join(held_again) == held_again == held_again.join(claimed)


def line(sequence: int) -> Line:
    return (sequence, b'{"name":"click","n":%d}' % sequence)


def size(first: int, last: int) -> int:
    """The bytes of lines first..last, newlines included."""
    return sum(len(line(sequence)[1]) + 1 for sequence in range(first, last + 1))


def batch(first: int, last: int) -> dict[tuple[str, str], ExportUpdate]:
    """A batch that wrote lines first..last to one file: the file's state after them, and the lines."""
    state = FileState(size(0, last), last)
    update = FileUpdate(
        FileRecord(state, BUCKET_END, LIVE, since=1.0), [line(s) for s in range(first, last + 1)]
    )
    return {EXPORT: ExportUpdate(files={"file": update})}


def saved(table: MemoryTable) -> LedgerEntry:
    """The export's entry as saved, read by an instance with no cache."""
    return PartitionLedger(table, PARTITION).entries()[EXPORT]


def test_a_batch_recorded_twice_counts_once() -> None:
    """Redelivered to the same instance, then to another: each signal is counted once."""
    table = MemoryTable()
    owner = PartitionLedger(table, PARTITION)
    owner.record(batch(0, 9), horizon=0.0, last_sequence=9)
    owner.record(batch(0, 9), horizon=0.0, last_sequence=9)
    PartitionLedger(table, PARTITION).record(batch(0, 9), horizon=0.0, last_sequence=9)
    counters = saved(table).counters
    assert (counters.exported, counters.exported_bytes) == (10, size(0, 9))


def test_two_owners_recording_overlapping_lines_count_each_line_once() -> None:
    """Two instances on one partition from one checkpoint, each with the entry cached before the other
    saved: the second save meets the conflict, joins, and counts only the lines past the first's."""
    table = MemoryTable()
    first, second = PartitionLedger(table, PARTITION), PartitionLedger(table, PARTITION)
    first.entries(), second.entries()  # both read the partition before either saved
    first.record(batch(0, 9), horizon=0.0, last_sequence=9)
    second.record(batch(5, 14), horizon=0.0, last_sequence=14)
    first.record(batch(10, 12), horizon=0.0, last_sequence=12)
    counters = saved(table).counters
    assert (counters.exported, counters.exported_bytes) == (15, size(0, 14))
    assert saved(table).files["file"].state == FileState(size(0, 14), 14)


@given(st.data())
def test_any_interleaving_of_two_owners_counts_each_line_once(data: st.DataObject) -> None:
    """Batches that overlap, repeat and come back, recorded by two instances with caches of their own:
    the entry counts every line written exactly once, and holds the longest state."""
    table = MemoryTable()
    owners = [PartitionLedger(table, PARTITION), PartitionLedger(table, PARTITION)]
    last = -1  # the last line any batch wrote: a batch starts from a checkpoint, at most one past it
    for _ in range(data.draw(st.integers(1, 8), label="batches")):
        first = data.draw(st.integers(0, last + 1), label="first")
        end = data.draw(st.integers(first, first + 6), label="last")
        owner = data.draw(st.sampled_from(owners), label="owner")
        owner.begin(first)
        owner.record(batch(first, end), horizon=0.0, last_sequence=end)
        last = max(last, end)
    entry = saved(table)
    assert (entry.counters.exported, entry.counters.exported_bytes) == (last + 1, size(0, last))
    assert entry.files["file"].state == FileState(size(0, last), last)


def test_dropped_signals_recorded_twice_count_once() -> None:
    """A disabled export's signals are counted as dropped once, whoever records them again."""
    table = MemoryTable()
    PartitionLedger(table, PARTITION).record(
        {EXPORT: ExportUpdate(dropped=[3, 4, 5])}, horizon=0.0, last_sequence=5
    )
    PartitionLedger(table, PARTITION).record(
        {EXPORT: ExportUpdate(dropped=[4, 5, 6, 7])}, horizon=0.0, last_sequence=7
    )
    assert saved(table).counters.dropped == 5


def test_write_attempts_are_added_as_they_are() -> None:
    """Write attempts (successes, failures by cause) are not records: each batch's are added."""
    table = MemoryTable()
    failed = Counters(
        writes_failed=1, failed={Cause.THROTTLED.value: 4}, last_failure=10, last_error="ServerBusy"
    )
    for _ in range(2):
        PartitionLedger(table, PARTITION).record(
            {EXPORT: ExportUpdate(attempts=failed)}, horizon=0.0, last_sequence=0
        )
    assert saved(table).counters == failed + failed


finite = st.floats(-1e12, 1e12, allow_nan=False)
records = st.builds(
    lambda state, bucket_end, hold, since, held_for: FileRecord(state, bucket_end, hold, since, *held_for),
    st.builds(FileState, st.integers(0, 2**53), st.integers(-1, 2**53)),
    finite,
    st.sampled_from(list(Hold)),
    finite,
    st.just(("", 0)) | st.tuples(st.just("5d41402abc4b2a76b9719d91"), st.integers(0, 2**53)),
)
"""Any record; a backlog file's names the live file and the position it holds signals for, a live
file's neither."""
entries = st.builds(
    LedgerEntry,
    files=st.dictionaries(st.text(min_size=1, max_size=40), records, max_size=20),
    counters=st.builds(
        Counters,
        exported=st.integers(0, 2**53),
        exported_bytes=st.integers(0, 2**53),
        writes_failed=st.integers(0, 100),
        failed=st.dictionaries(st.sampled_from([c.value for c in Cause]), st.integers(1, 2**53)),
    ),
    horizon=finite,
    dropped_through=st.integers(-1, 2**53),
)


def stored(entry: LedgerEntry) -> LedgerEntry:
    """The entry saved to the table and read back (an etag from the table, as on a real read)."""
    table = MemoryTable()
    (result,) = table.submit_transaction(
        [(TransactionOperation.CREATE, to_entity(PARTITION, *EXPORT, entry))]
    )
    back = from_entity(table.get_entity(PARTITION, "project|export"))
    assert back.etag == result["etag"]
    return back


@given(entries)
def test_an_entry_survives_its_row(entry: LedgerEntry) -> None:
    """to_entity / from_entity: files, counters, horizon and dropped signals read back as they were;
    only a live record's time is not kept (it decides nothing)."""
    back = stored(entry)
    kept = {
        key: record if record.held or record.of else replace(record, since=0.0)
        for key, record in entry.files.items()
    }
    assert back.files == kept
    assert (back.counters, back.horizon, back.dropped_through) == (
        entry.counters,
        entry.horizon,
        entry.dropped_through,
    )


def test_an_entry_larger_than_a_property_is_split_and_read_back_whole() -> None:
    """A string property holds 32K characters: an entry of thousands of files spans several, in order."""
    files = {f"{n:024x}": FileRecord(FileState(n * 100, n), BUCKET_END + n, CLOSED, 7.5) for n in range(3000)}
    entry = LedgerEntry(files=files, counters=Counters(exported=3000))
    entity = to_entity(PARTITION, *EXPORT, entry)
    assert entity["parts"] > 1 and all(len(entity[f"files{i}"]) <= 32_000 for i in range(entity["parts"]))
    assert stored(entry).files == files


@given(st.data())
def test_views_made_at_the_same_instant_join_the_same_in_either_order(data: st.DataObject) -> None:
    """Ties included (two views at one state, made at one instant, or live views of any time): the
    joined record is the same whole record whichever view the join is called on."""
    state = data.draw(st.sampled_from([FileState(0, -1), FileState(40, 3)]))
    since = data.draw(st.sampled_from([5.0, 7.0]))
    a, b = (
        FileRecord(
            state,
            BUCKET_END,
            data.draw(st.sampled_from(list(Hold))),
            data.draw(st.sampled_from([since, 9.0])),
        )
        for _ in range(2)
    )
    assert a.join(b) == b.join(a)
