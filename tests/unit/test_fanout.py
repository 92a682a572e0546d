"""The fanout runs a batch's writes at once when they wait, and hands every outcome back, in order."""

from __future__ import annotations

import threading

import pytest

from shared.fanout import Fanout


def test_calls_run_at_once_and_their_results_come_back_in_order() -> None:
    """Four calls that can only finish together (a barrier of four) finish: each call that waits wakes
    a helper for the next, so they ran at once, on the three helpers and the caller's own thread."""
    fanout = Fanout(3, "test")
    barrier = threading.Barrier(4, timeout=10)
    threads: list[str] = []

    def call(n: int) -> int:
        threads.append(threading.current_thread().name)
        barrier.wait()
        return n * n

    try:
        assert fanout.run([lambda n=n: call(n) for n in range(4)]) == [0, 1, 4, 9]  # type: ignore[misc]
    finally:
        fanout.close()
    assert len(set(threads)) == 4
    assert threading.current_thread().name in threads


def test_an_exception_is_handed_back_in_its_place_and_the_other_calls_still_run() -> None:
    fanout = Fanout(2, "test")
    failure = ValueError("no")

    def fail() -> int:
        raise failure

    try:
        outcomes = fanout.run([lambda: 1, fail, lambda: 3])
        again = fanout.run([fail])
    finally:
        fanout.close()
    assert outcomes == [1, failure, 3]
    assert again == [failure]


def test_more_calls_than_threads_queue_and_all_run() -> None:
    fanout = Fanout(2, "test")
    try:
        assert fanout.run([lambda n=n: n for n in range(50)]) == list(range(50))  # type: ignore[misc]
        assert fanout.run([]) == []
    finally:
        fanout.close()


def test_close_stops_its_threads() -> None:
    fanout = Fanout(2, "closing")
    fanout.run([lambda: 1, lambda: 2, lambda: 3])
    fanout.close()
    for thread in threading.enumerate():
        if thread.name.startswith("closing-"):
            thread.join(timeout=10)
            assert not thread.is_alive()


def test_a_fanout_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        Fanout(0, "none")
