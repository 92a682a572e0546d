"""How a replay pass joins a live file's backlog files (shared.replay.read_held): pure, no storage."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.replay import REPLAYED, read_held, sequence_line


def backlog(*signals: tuple[int, bytes]) -> bytes:
    return b"".join(sequence_line(sequence, data) for sequence, data in signals)


def test_a_signal_held_by_two_owners_is_replayed_once_in_sequence_order() -> None:
    first = backlog((5, b'{"a":5}'), (6, b'{"a":6}'))
    second = backlog((6, b'{"a":6}'), (7, b'{"a":7}'), (4, b'{"a":4}'))
    held = read_held([("x@0-5", 0, first, {}), ("x@10-6", 10, second, {})])
    assert [sequence for sequence, _ in held.to_replay(set())] == [4, 5, 6, 7]
    assert held.starts == [(0, 0, 5), (10, 0, 6)]  # where each was held, replayed from, its first signal


def test_what_an_earlier_pass_replayed_and_what_landed_are_left_out() -> None:
    raw = backlog((1, b"{}"), (2, b"{}"), (3, b"{}"))
    replayed = len(sequence_line(1, b"{}"))
    held = read_held([("x@0-1", 0, raw, {REPLAYED: str(replayed)})])
    assert held.done == {1}
    assert [sequence for sequence, _ in held.to_replay({3})] == [2]
    assert held.landed_pending({3}) == 1
    assert held.signals.keys() == {1, 2, 3}


def test_a_torn_last_line_is_left_for_the_next_pass() -> None:
    """A crash while appending to the backlog leaves a partial line: it is not replayed, and the
    blob's end stops before it, so the blob is not deleted."""
    whole = backlog((1, b'{"a":1}'))
    torn = whole + sequence_line(2, b'{"a":2}')[:-3]
    held = read_held([("x@0-1", 0, torn, {})])
    assert [sequence for sequence, _ in held.to_replay(set())] == [1]
    assert held.ends == {"x@0-1": len(whole)}


@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 50), st.binary(min_size=1, max_size=8).map(bytes.hex)), max_size=8),
        max_size=4,
    ),
    st.sets(st.integers(0, 50)),
)
def test_every_held_signal_is_replayed_at_most_once_unless_landed(
    blobs: list[list[tuple[int, str]]], landed: set[int]
) -> None:
    files = [
        (f"x@{i}-0", i, backlog(*((s, f'"{d}"'.encode()) for s, d in lines)), {})
        for i, lines in enumerate(blobs)
    ]
    held = read_held(files)
    replayed = [sequence for sequence, _ in held.to_replay(landed)]
    assert replayed == sorted(set(replayed))
    assert set(replayed) == {s for lines in blobs for s, _ in lines} - landed
