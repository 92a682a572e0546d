"""Run one batch's file writes at once, on a fixed set of threads, at the least hand-off cost.

A batch writes each destination file with one blocking request, so its writes run on threads. Handing a
call to `concurrent.futures.ThreadPoolExecutor` costs about 12 µs of CPU (a Future with its Condition, an
idle semaphore, a condition wait per result); the export path hands off a write per file per batch, and
that was about a tenth of its CPU (`python -m bench`, 10 exports). Here a call is one `SimpleQueue.put`
(C), and a batch waits on one lock that the last call to finish releases: about a third of the cost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import TypeVar

T = TypeVar("T")


class _Batch:
    """The outcomes of one `run`, and the lock its caller waits on until every call has finished."""

    def __init__(self, calls: int) -> None:
        self.outcomes: list[object] = [None] * calls
        self._left = calls
        self._count = threading.Lock()
        self._finished = threading.Lock()
        self._finished.acquire()

    def finish(self, index: int, outcome: object) -> None:
        self.outcomes[index] = outcome
        with self._count:
            self._left -= 1
            last = self._left == 0
        if last:
            self._finished.release()

    def wait(self) -> None:
        self._finished.acquire()


_Call = tuple[Callable[[], object], _Batch, int]


class Fanout:
    """A fixed set of daemon threads, started on first use, that run the calls of `run`."""

    def __init__(self, threads: int, name: str) -> None:
        if threads < 1:
            raise ValueError("a fanout needs at least one thread")
        self._threads = threads
        self._name = name
        self._queue: SimpleQueue[_Call | None] = SimpleQueue()
        self._started = 0
        self._lock = threading.Lock()

    def run(self, calls: Sequence[Callable[[], T]]) -> list[T | BaseException]:
        """Run every call at once, the last one in this thread (which would otherwise only wait).

        Returns each call's result, or the exception it raised, in the order of `calls`.
        """
        if not calls:
            return []
        batch = _Batch(len(calls))
        self._start(min(len(calls) - 1, self._threads))
        for index, call in enumerate(calls[:-1]):
            self._queue.put((call, batch, index))
        _run(calls[-1], batch, len(calls) - 1)
        batch.wait()
        return batch.outcomes  # type: ignore[return-value]  # each slot holds a T or an exception

    def close(self) -> None:
        """Stop the threads once the calls already queued have run."""
        with self._lock:
            for _ in range(self._started):
                self._queue.put(None)
            self._started = 0

    def _start(self, wanted: int) -> None:
        if self._started >= wanted:
            return
        with self._lock:
            while self._started < wanted:
                self._started += 1
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name}-{self._started}", daemon=True
                )
                thread.start()

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            _run(*item)


def _run(call: Callable[[], object], batch: _Batch, index: int) -> None:
    try:
        outcome: object = call()
    except BaseException as error:  # handed to the caller of `run`, which decides; never lost here
        outcome = error
    batch.finish(index, outcome)
