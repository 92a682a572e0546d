"""Exactly once into a file: crashes, redelivery and two writers at once, on an in-memory file store."""

from __future__ import annotations

import itertools
import random

import pytest

from shared.delivery import EMPTY, FileGone, FileState, Line, PositionConflict, deliver, reconcile


class MemoryFiles:
    """A file store with the semantics the sinks have: positioned appends, atomic per request."""

    def __init__(self) -> None:
        self.files: dict[str, bytearray] = {}
        self.appends = 0
        self.crash_after_append = False

    def create(self, path: str) -> bool:
        if path in self.files:
            return False
        self.files[path] = bytearray()
        return True

    def length(self, path: str) -> int | None:
        data = self.files.get(path)
        return None if data is None else len(data)

    def append(self, path: str, data: bytes, position: int) -> int:
        if path not in self.files:
            raise FileGone(path)
        if len(self.files[path]) != position:
            raise PositionConflict(path)
        self.files[path] += data
        self.appends += 1
        if self.crash_after_append:
            raise ConnectionResetError("the response was lost")
        return position + len(data)

    def read(self, path: str, start: int, end: int) -> bytes:
        return bytes(self.files[path][start:end])

    def lines(self, path: str) -> list[bytes]:
        return bytes(self.files[path]).splitlines()


def lines(numbers: range) -> list[Line]:
    return [(n, b'{"name":"s","n":%d}' % n) for n in numbers]


def test_a_first_write_creates_the_file_and_appends_once() -> None:
    """One append request writes the whole batch; the state points after it."""
    files = MemoryFiles()
    state = deliver(files, "f", lines(range(5)), None)
    assert files.lines("f") == [data for _, data in lines(range(5))]
    assert state == FileState(len(files.files["f"]), 4) and files.appends == 1


def test_a_redelivered_batch_writes_nothing_again() -> None:
    """Signals at or below the recorded sequence number are not written again."""
    files = MemoryFiles()
    state = deliver(files, "f", lines(range(5)), None)
    again = deliver(files, "f", lines(range(3, 8)), state)
    assert files.lines("f") == [data for _, data in lines(range(8))]
    assert again.last_sequence == 7


def test_a_crash_after_the_append_before_the_record_does_not_duplicate() -> None:
    """The write landed but the ledger never heard: the redelivery finds it in the file."""
    files = MemoryFiles()
    recorded = deliver(files, "f", lines(range(3)), None)
    files.crash_after_append = True
    with pytest.raises(ConnectionResetError):
        deliver(files, "f", lines(range(3, 6)), recorded)
    files.crash_after_append = False
    # Redelivery from the checkpoint, with other batch boundaries, and the old ledger record.
    state = deliver(files, "f", lines(range(3, 9)), recorded)
    assert files.lines("f") == [data for _, data in lines(range(9))]
    assert state == FileState(len(files.files["f"]), 8)


def test_a_ledger_record_lost_entirely_is_rebuilt_from_the_file() -> None:
    """With no record at all, the writer finds its signals in the existing file."""
    files = MemoryFiles()
    deliver(files, "f", lines(range(4)), None)
    state = deliver(files, "f", lines(range(2, 6)), None)
    assert files.lines("f") == [data for _, data in lines(range(6))]
    assert state.last_sequence == 5


def test_two_writers_on_one_partition_never_duplicate_or_lose() -> None:
    """A stale writer's append fails on position; every interleaving ends with each signal once."""
    for seed in range(200):
        rng = random.Random(seed)
        files = MemoryFiles()
        states: list[FileState | None] = [None, None]
        cursor = [0, 0]  # each writer reads the partition from the same checkpoint
        end = 30
        while min(cursor) < end:
            who = rng.randrange(2)
            if cursor[who] >= end:
                who = 1 - who
            size = rng.randint(1, 7)
            batch = lines(range(cursor[who], min(end, cursor[who] + size)))
            states[who] = deliver(files, "f", batch, states[who])
            cursor[who] += size
            if rng.random() < 0.2:
                states[who] = None  # the writer restarted and lost its cache
        assert files.lines("f") == [data for _, data in lines(range(end))], f"seed {seed}"


def test_customer_lines_in_the_file_are_stepped_over_not_overwritten() -> None:
    """Foreign data appended by someone else stays; our lines follow it."""
    files = MemoryFiles()
    state = deliver(files, "f", lines(range(2)), None)
    files.files["f"] += b'{"customer":"note"}\n'
    deliver(files, "f", lines(range(2, 4)), state)
    assert files.lines("f")[2] == b'{"customer":"note"}'
    assert files.lines("f")[3:] == [data for _, data in lines(range(2, 4))]


def test_a_file_deleted_by_the_customer_is_recreated_with_new_signals_only() -> None:
    """After a deletion, new signals go to a new file; old ones are not exported again."""
    files = MemoryFiles()
    state = deliver(files, "f", lines(range(3)), None)
    del files.files["f"]
    deliver(files, "f", lines(range(3, 5)), state)
    assert files.lines("f") == [data for _, data in lines(range(3, 5))]


@pytest.mark.parametrize("anchored", [True, False])
def test_reconcile_with_a_writer_ahead_stops_after_our_part(anchored: bool) -> None:
    """When the region holds all our lines and more, the state ends after ours and nothing is pending."""
    ours = lines(range(3))
    ahead = b"".join(data + b"\n" for _, data in lines(range(6)))
    state, pending = reconcile(ahead, EMPTY, ours, anchored=anchored)
    assert pending == []
    assert state == FileState(sum(len(data) + 1 for _, data in ours), 2)


def test_every_write_order_of_three_batches_with_crashes_converges() -> None:
    """Crash after any append, replay from any earlier checkpoint: the file ends the same."""
    batches = [lines(range(0, 3)), lines(range(3, 5)), lines(range(5, 9))]
    for crash_at in range(3):
        for restart_from in range(crash_at + 1):
            files = MemoryFiles()
            recorded: list[FileState | None] = [None]
            for index, batch in enumerate(batches[: crash_at + 1]):
                files.crash_after_append = index == crash_at
                try:
                    recorded.append(deliver(files, "f", batch, recorded[-1]))
                except ConnectionResetError:
                    pass
            files.crash_after_append = False
            state = recorded[restart_from]
            for batch in batches[restart_from:]:
                state = deliver(files, "f", batch, state)
            assert files.lines("f") == [data for _, data in itertools.chain(*batches)], (
                crash_at,
                restart_from,
            )
