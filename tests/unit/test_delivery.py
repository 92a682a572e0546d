"""Exactly once into a file: crashes, redelivery, stale caches and two writers at once, on an in-memory
file store with the sinks' semantics. The state machine in test_exactly_once.py runs the whole export
path over every interleaving; these are the cases one by one."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.delivery import (
    EMPTY,
    FORGOTTEN,
    FileState,
    Line,
    Payloads,
    Progress,
    Record,
    deliver,
    encode,
    match_in_order,
    reconcile,
)
from shared.location import same_signal
from shared.model import LocationOption
from tests.memory import MemoryFiles

OWNER = "p/x/g1/0"


class Lost(Exception):
    """The response to a request that did land was lost."""


def lines(numbers: range | list[int], body: bytes | None = None) -> list[Line]:
    return [(n, body if body is not None else b'{"name":"s","n":%d}' % n) for n in numbers]


def content(batch: list[Line]) -> list[bytes]:
    return [data for _, data in batch]


class Ledger:
    """The authority writers consult: the latest state any writer saved (longer wins, as the ledger)."""

    def __init__(self) -> None:
        self.record: Record = None

    def save(self, state: FileState) -> None:
        self.record = state if not isinstance(self.record, FileState) else self.record.join(state)

    def read(self) -> Record:
        return self.record


def write(
    files: MemoryFiles, batch: list[Line], known: FileState | None, ledger: Ledger | None = None
) -> FileState:
    ledger = ledger or Ledger()
    state = deliver(files, "f", batch, known, owner=OWNER, authority=ledger.read)
    assert isinstance(state, FileState)
    return state


def test_a_first_write_creates_the_file_and_appends_once() -> None:
    """One append request writes the whole batch; the state points after it."""
    files = MemoryFiles()
    state = write(files, lines(range(5)), None)
    assert files.lines("f") == content(lines(range(5)))
    assert state == FileState(len(files.files["f"]), 4) and files.appends == 1
    assert files.owners["f"] == OWNER


def test_a_redelivered_batch_writes_nothing_again() -> None:
    """Signals at or below the recorded sequence number are not written again."""
    files = MemoryFiles()
    state = write(files, lines(range(5)), None)
    again = write(files, lines(range(3, 8)), state)
    assert files.lines("f") == content(lines(range(8)))
    assert again.last_sequence == 7


def test_a_crash_after_the_append_before_the_record_does_not_duplicate() -> None:
    """The write landed but the ledger never heard: the redelivery finds it after the anchor."""
    files = MemoryFiles()
    recorded = write(files, lines(range(3)), None)

    def lose_response(when: str, op: str, path: str) -> None:
        if (when, op) == ("after", "append"):
            raise Lost

    files.fault = lose_response
    with pytest.raises(Lost):
        write(files, lines(range(3, 6)), recorded)
    files.fault = lambda *_: None
    # Redelivery from the checkpoint, with other batch boundaries, and the old ledger record.
    state = write(files, lines(range(3, 9)), recorded)
    assert files.lines("f") == content(lines(range(9)))
    assert state == FileState(len(files.files["f"]), 8)


def test_a_ledger_record_lost_entirely_is_rebuilt_from_the_file() -> None:
    """With no record at all, the writer's own file (by its owner mark) is read from its start."""
    files = MemoryFiles()
    write(files, lines(range(4)), None)
    state = write(files, lines(range(2, 6)), None)
    assert files.lines("f") == content(lines(range(6)))
    assert state.last_sequence == 5


def test_two_writers_with_stale_caches_never_duplicate_or_lose() -> None:
    """Two writers of one partition, crashes anywhere (before or after an append lands), restarts from
    the checkpoint with no cache; distinct and identical bodies: each signal once, in order."""
    for seed, body in itertools.product(range(150), (None, b'{"name":"heartbeat"}')):
        rng = random.Random(seed)
        files, ledger = MemoryFiles(), Ledger()
        states: list[FileState | None] = [None, None]
        cursor, checkpoint, end = [0, 0], 0, 30
        while checkpoint < end:
            who = rng.randrange(2)
            if cursor[who] >= end or rng.random() < 0.1:
                # It loses the partition and gets it back later, from the checkpoint, keeping its
                # cache: what it remembers may be any number of batches old.
                cursor[who] = checkpoint
                continue
            batch = lines(range(cursor[who], min(end, cursor[who] + rng.randint(1, 7))), body)
            crash = rng.choice([None, None, ("before", "append"), ("after", "append")])
            files.fault = lambda when, op, path, crash=crash: _raise(Lost) if (when, op) == crash else None
            try:
                state = write(files, batch, states[who], ledger)
            except Lost:
                # The process died: it restarts from the checkpoint, with no cache.
                cursor[who], states[who] = checkpoint, None
                continue
            finally:
                files.fault = lambda *_: None
            ledger.save(state)  # the batch's one ledger save; then the checkpoint moves
            states[who], cursor[who] = state, batch[-1][0] + 1
            checkpoint = cursor[who]
        assert files.lines("f") == content(lines(range(end), body)), f"seed {seed}"


@pytest.mark.parametrize("body", [None, b'{"name":"heartbeat"}'])
def test_a_partition_handed_back_with_a_stale_cache_does_not_duplicate(body: bytes | None) -> None:
    """A writes batch 1; B writes 2 and 3 and records them; A gets batch 3 again with its old cache,
    then batch 4: each signal once (the issue's reproduction: 0,1,2,3,4,5,3,4,5 before)."""
    files, ledger = MemoryFiles(), Ledger()
    batch1, batch2, batch3, batch4 = (lines(range(n, n + 2), body) for n in (0, 2, 4, 6))
    a = write(files, batch1, None, ledger)
    ledger.save(a)
    b = write(files, batch2, a, ledger)
    b = write(files, batch3, b, ledger)
    ledger.save(b)
    a = write(files, batch3, a, ledger)  # A's cache still says "after batch 1"
    write(files, batch4, a, ledger)
    assert files.lines("f") == content(lines(range(8), body))


def test_identical_signals_in_a_file_that_is_not_ours_are_not_taken_for_ours() -> None:
    """Three heartbeats already in a file of another owner; two new ones, no record: five lines."""
    heartbeat = b'{"name":"heartbeat"}'
    files = MemoryFiles()
    files.files["f"] = bytearray(heartbeat + b"\n") * 3
    files.owners["f"] = "p/x/an-earlier-export-of-this-id/0"
    state = write(files, lines([7, 8], heartbeat), None)
    assert files.lines("f") == [heartbeat] * 5
    assert state == FileState(len(files.files["f"]), 8)


def test_identical_signals_with_a_stale_cache_are_found_by_position_not_content() -> None:
    """Our three heartbeats are recorded; a writer with no cache gets two new ones: five lines."""
    heartbeat = b'{"name":"heartbeat"}'
    files, ledger = MemoryFiles(), Ledger()
    ledger.save(write(files, lines([1, 2, 3], heartbeat), None, ledger))
    state = write(files, lines([4, 5], heartbeat), None, ledger)
    assert files.lines("f") == [heartbeat] * 5
    assert state == FileState(len(files.files["f"]), 5)


def test_a_bucket_the_ledger_forgot_is_not_written_again() -> None:
    """A stale redelivery of an old bucket: the ledger forgot it, so everything in it was recorded."""
    files = MemoryFiles()
    write(files, lines(range(3)), None)
    assert deliver(files, "f", lines(range(3)), None, owner=OWNER, authority=lambda: FORGOTTEN) is FORGOTTEN
    assert files.lines("f") == content(lines(range(3)))


def test_customer_lines_in_the_file_are_stepped_over_not_overwritten() -> None:
    """Foreign data appended by someone else stays; our lines follow it."""
    files = MemoryFiles()
    state = write(files, lines(range(2)), None)
    files.files["f"] += b'{"customer":"note"}\n'
    write(files, lines(range(2, 4)), state)
    assert files.lines("f")[2] == b'{"customer":"note"}'
    assert files.lines("f")[3:] == content(lines(range(2, 4)))


def test_a_file_deleted_by_the_customer_is_recreated_with_new_signals_only() -> None:
    """After a deletion, new signals go to a new file; old ones are not exported again."""
    files = MemoryFiles()
    state = write(files, lines(range(3)), None)
    del files.files["f"]
    write(files, lines(range(3, 5)), state)
    assert files.lines("f") == content(lines(range(3, 5)))


def test_reconcile_with_a_writer_ahead_stops_after_our_part() -> None:
    """When the region holds all our lines and more, the state ends after ours and nothing is pending."""
    ours = lines(range(3))
    state, pending = reconcile(encode(lines(range(6))), EMPTY, ours)
    assert list(pending) == []
    assert state == FileState(len(encode(ours)), 2)


def test_a_payload_over_the_request_limit_is_split_at_line_ends() -> None:
    """Each append holds whole lines and at most `max_append` bytes, and each is positioned."""
    files = MemoryFiles(max_append=64)
    batch = lines(range(20))
    state = write(files, batch, None)
    assert files.lines("f") == content(batch)
    assert files.appends > 1 and state == FileState(len(files.files["f"]), 19)


class RecordingFiles(MemoryFiles):
    """MemoryFiles that keep each append's bytes."""

    def __init__(self, max_append: int) -> None:
        super().__init__(max_append)
        self.sent: list[bytes] = []

    def append(self, path: str, data: bytes, position: int) -> int:
        self.sent.append(data)
        return super().append(path, data, position)


def test_a_payload_over_the_limit_is_cut_into_as_few_whole_line_requests_as_it_allows() -> None:
    """Each request ends at a line's end and is as full as the limit allows: 20 lines of 21 bytes with a
    64-byte limit take 7 requests of 3 lines (and a last one of 2)."""
    files = RecordingFiles(max_append=64)
    batch = [(n, b'{"name":"s","n":%03d}' % n) for n in range(20)]
    assert {len(data) + 1 for _, data in batch} == {21}
    write(files, batch, None)
    assert [data.count(b"\n") for data in files.sent] == [3, 3, 3, 3, 3, 3, 2]
    assert all(data.endswith(b"\n") and len(data) <= 64 for data in files.sent)
    assert b"".join(files.sent) == encode(batch)


def test_a_line_longer_than_the_limit_goes_alone_in_its_own_request() -> None:
    """A single line over the request limit is never split: it is sent alone, between full requests."""
    files = RecordingFiles(max_append=64)
    batch = [(0, b'{"n":0}'), (1, b'{"pad":"' + b"x" * 100 + b'"}'), (2, b'{"n":2}'), (3, b'{"n":3}')]
    write(files, batch, None)
    assert files.sent == [b'{"n":0}\n', batch[1][1] + b"\n", b'{"n":2}\n{"n":3}\n']


def test_a_write_cut_into_requests_that_fails_midway_reports_where_the_file_stands() -> None:
    """The answer to the second of several requests is lost: the progress is the end of the first, the
    last the writer knows of (the file is held there), and a redelivery writes the rest once."""
    files = RecordingFiles(max_append=64)
    batch = [(n, b'{"name":"s","n":%03d}' % n) for n in range(10)]
    appends = itertools.count(1)

    def die_after_the_second(when: str, op: str, path: str) -> None:
        if (when, op) == ("after", "append") and next(appends) == 2:
            raise Lost

    files.fault = die_after_the_second
    progress = Progress()
    with pytest.raises(Lost):
        deliver(files, "f", batch, None, owner=OWNER, progress=progress)
    assert progress.state == FileState(len(encode(batch[:3])), 2)
    files.fault = lambda *_: None
    state = write(files, batch, progress.state)
    assert files.lines("f") == content(batch) and state == FileState(len(encode(batch)), 9)


def test_files_that_take_the_same_lines_share_one_payload_and_its_pieces() -> None:
    """The export path writes one list of lines to several files (exports that select the same names):
    encoded and cut once, each file gets all of it."""
    files = RecordingFiles(max_append=64)
    batch = [(n, b'{"name":"s","n":%03d}' % n) for n in range(10)]
    encoded = Payloads()
    for path in ("a", "b", "c"):
        assert deliver(files, path, batch, None, owner=OWNER, encoded=encoded) == FileState(
            len(encode(batch)), 9
        )
        assert files.lines(path) == content(batch)
    assert encoded.size(batch) == len(encode(batch))
    assert encoded.size(lines(range(3))) is None
    assert encoded.pieces(batch, 64) is encoded.pieces(batch, 64), "cut once"
    assert encoded(batch) is encoded(batch), "encoded once"


def test_every_write_order_of_three_batches_with_crashes_converges() -> None:
    """Crash after any append, replay from any earlier checkpoint: the file ends the same."""
    batches = [lines(range(0, 3)), lines(range(3, 5)), lines(range(5, 9))]
    for crash_at in range(3):
        for restart_from in range(crash_at + 1):
            files = MemoryFiles()
            recorded: list[FileState | None] = [None]
            for index, batch in enumerate(batches[: crash_at + 1]):
                files.fault = (
                    (lambda when, op, path: _raise(Lost) if (when, op) == ("after", "append") else None)
                    if index == crash_at
                    else (lambda *_: None)
                )
                try:
                    recorded.append(write(files, batch, recorded[-1]))
                except Lost:
                    pass
            files.fault = lambda *_: None
            state = recorded[restart_from]
            for batch in batches[restart_from:]:
                state = write(files, batch, state)
            assert files.lines("f") == content(list(itertools.chain(*batches))), (crash_at, restart_from)


def _raise(error: type[Exception]) -> None:
    raise error


@given(
    st.lists(st.sampled_from([b'{"name":"a"}', b'{"name":"b"}', b'{"n":1}']), max_size=12),
    st.data(),
)
def test_match_in_order_finds_a_subsequence_of_ours_among_foreign_rows(
    bodies: list[bytes], data: st.DataObject
) -> None:
    """Lines found are in order, and each is the line at that place in the region (never out of order)."""
    ours = [(n, body) for n, body in enumerate(bodies)]
    written = sorted(data.draw(st.sets(st.integers(0, len(ours) - 1)))) if ours else []
    foreign = data.draw(st.lists(st.just(b'{"customer":1}'), max_size=3))
    rows = [ours[i][1] for i in written] + foreign
    region = b"".join(row + b"\n" for row in rows)
    found = match_in_order(region, ours)
    indices = [index for index, _ in found]
    assert indices == sorted(set(indices))
    offsets = [end for _, end in found]
    for (index, end), start in zip(found, [0, *offsets], strict=False):
        assert region[:end].endswith(ours[index][1] + b"\n") and end > start
    assert len(found) == len(written)  # every line of ours in the region is found


def test_a_signal_located_differently_on_a_second_delivery_is_written_once() -> None:
    """The operator replaced the location database between a write whose answer was lost and its
    redelivery: the signals now carry another location, but delivery knows them by their place in the
    file (shared.location.same_signal leaves the location member out of the comparison)."""
    option = LocationOption(ip_field="/ip")

    def located(city: bytes) -> list[Line]:
        return [
            (n, b'{"name":"s","ip":"81.2.69.0","n":%d,"location":{"city":"%s"}}' % (n, city))
            for n in range(3)
        ]

    for same, expected in ((same_signal(option), 3), (None, 6)):
        files = MemoryFiles()
        recorded = None  # the ledger never heard of the file: found by its owner mark

        def lose_response(when: str, op: str, path: str) -> None:
            if (when, op) == ("after", "append"):
                raise Lost

        files.fault = lose_response
        with pytest.raises(Lost):
            deliver(files, "f", located(b"Oldtown"), recorded, owner=OWNER)
        files.fault = lambda *_: None
        deliver(files, "f", located(b"Newtown"), recorded, owner=OWNER, same=same)
        assert len(files.lines("f")) == expected  # without the comparison, written twice


def test_a_partial_last_line_in_a_file_is_not_taken_for_one_of_ours() -> None:
    """A region ending in a line without its newline (someone else's, cut short) matches none of ours,
    even when its bytes are those of our line: our line is still written, after it."""
    line = (7, b'{"name":"heartbeat"}')
    assert match_in_order(line[1], [line]) == []
    assert match_in_order(b'{"customer":1}\n' + line[1], [line]) == []
    state, pending = reconcile(line[1], FileState(40, 6), [line])
    assert (state, list(pending)) == (FileState(40 + len(line[1]), 6), [line])


def test_of_two_views_at_one_length_the_one_that_accounted_for_more_signals_is_later() -> None:
    """A file's length alone does not order two views: at one length (say, a held file whose last lines
    were stepped over) the view with the later last sequence wins, whichever it is called on."""
    fewer, more = FileState(120, 3), FileState(120, 9)
    assert fewer.join(more) == more
    assert more.join(fewer) == more
    assert FileState(121, 0).join(more) == FileState(121, 0)


def test_a_file_deleted_while_its_ledger_record_is_read_is_recreated_with_new_signals_only() -> None:
    """The customer deletes the file just as a writer without a cached record reads the ledger: the
    writer creates it again and writes, from its start, only the signals the record does not hold."""
    files, ledger = MemoryFiles(), Ledger()
    ledger.save(write(files, lines(range(3)), None))
    deleted: list[str] = []

    def delete_then_read() -> Record:
        if not deleted:
            deleted.append(files.files.pop("f") and "f")
        return ledger.read()

    state = deliver(files, "f", lines(range(5)), None, owner=OWNER, authority=delete_then_read)
    assert deleted
    assert files.lines("f") == content(lines(range(3, 5)))
    assert state == FileState(len(encode(lines(range(3, 5)))), 4)
    assert write(files, lines(range(5)), None) == state, "ours (owner mark): a redelivery adds nothing"
    assert files.lines("f") == content(lines(range(3, 5)))
    assert list(files.files) == ["f"], "no other file made"


def test_a_region_holding_some_of_ours_then_foreign_lines_ends_after_it_with_the_rest_to_write() -> None:
    """Our first line was written, then a customer's line: the state moves past the whole region and
    says our first line is in; the second is still to write."""
    ours = lines(range(4, 6))
    region = encode(ours[:1]) + b'{"customer":1}\n'
    state, pending = reconcile(region, FileState(100, 3), ours)
    assert state == FileState(100 + len(region), 4)
    assert list(pending) == ours[1:]


def test_a_file_recreated_after_a_deletion_is_marked_as_ours() -> None:
    """The customer deletes the file (between two batches, or while a writer without a record looks at
    it): the file made again carries the owner mark, so a redelivery without cache or record finds its
    lines there and adds nothing."""
    files = MemoryFiles()
    state = write(files, lines(range(3)), None)
    del files.files["f"]
    state = write(files, lines(range(3, 5)), state)
    assert state == FileState(len(encode(lines(range(3, 5)))), 4)
    assert write(files, lines(range(3, 5)), None) == state
    assert files.lines("f") == content(lines(range(3, 5)))

    def delete_then_no_record() -> Record:
        files.files.pop("g", None)
        return None

    files.create("g", OWNER)
    state = deliver(files, "g", lines(range(2)), None, owner=OWNER, authority=delete_then_no_record)
    assert state == FileState(len(encode(lines(range(2)))), 1)
    assert deliver(files, "g", lines(range(2)), None, owner=OWNER) == state
    assert files.lines("g") == content(lines(range(2)))
    assert sorted(files.files) == ["f", "g"], "no other file made"


def test_a_file_of_another_owner_takes_all_our_lines_from_the_first() -> None:
    """In a file not ours, even our signals 0 and 1 are still to write: nothing is assumed written."""
    files = MemoryFiles()
    files.files["f"] = bytearray(b'{"customer":1}\n')
    files.owners["f"] = "someone-else"
    state = write(files, lines(range(3)), None)
    assert files.lines("f") == [b'{"customer":1}', *content(lines(range(3)))]
    assert state == FileState(len(files.files["f"]), 2)


def test_a_file_the_customer_replaced_with_a_shorter_one_gets_new_signals_after_its_content() -> None:
    """Shorter than the writer knows it: the customer's content is kept and the rest written after it."""
    files, ledger = MemoryFiles(), Ledger()
    state = write(files, lines(range(3)), None)
    ledger.save(state)
    files.files["f"] = bytearray(b'{"customer":1}\n')
    state = write(files, lines(range(3, 5)), state, ledger)
    assert files.lines("f") == [b'{"customer":1}', *content(lines(range(3, 5)))]
    assert state == FileState(len(files.files["f"]), 4)


def test_a_delivery_that_fails_before_any_append_leaves_its_progress_at_the_known_state() -> None:
    """The first append's answer is lost: the file is held where the cache said it stood."""
    files = MemoryFiles()
    known = write(files, lines(range(2)), None)

    def lose(when: str, op: str, path: str) -> None:
        if (when, op) == ("before", "append"):
            raise Lost

    files.fault = lose
    progress = Progress()
    with pytest.raises(Lost):
        deliver(files, "f", lines(range(4)), known, owner=OWNER, progress=progress)
    assert progress.state == known
