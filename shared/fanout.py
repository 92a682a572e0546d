"""Run one batch's file writes at once, on a fixed set of threads, at the least hand-off cost.

A batch writes each destination file with one blocking request, so its writes run on threads. Handing a
call to `concurrent.futures.ThreadPoolExecutor` costs about 12 µs of CPU (a Future with its Condition, an
idle semaphore, a condition wait per result), and the export path would pay it for every file of every
batch. Here the caller works through the calls itself and wakes one helper at a time: a helper takes
the next call, wakes the next helper if calls are left, then runs its own. When the calls wait on the
network, each one soon has its own thread; when they finish at once (storage that answers from memory,
as in `python -m bench`), the caller has run them all before a helper gets the interpreter, and the
batch costs one wake-up instead of one hand-off per call.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import Generic, TypeVar

T = TypeVar("T")


class _Batch(Generic[T]):
    """The calls of one `run`: which is next, their outcomes, and the lock the caller waits on until
    the last one has finished."""

    def __init__(self, calls: Sequence[Callable[[], T]], fanout: Fanout) -> None:
        self.calls = calls
        self.outcomes: list[T | BaseException | None] = [None] * len(calls)
        self._fanout = fanout
        self._next = itertools.count()  # next() on it is atomic: each call is taken once
        self._helper_called = False  # a helper was woken and has not come yet
        self._left = len(calls)
        self._count = threading.Lock()
        self.finished = threading.Lock()
        self.finished.acquire()

    def work(self) -> None:
        """Take and run calls until none is left, waking a helper whenever more are waiting."""
        while (index := next(self._next)) < len(self.calls):
            if index + 1 < len(self.calls) and not self._helper_called:
                self._helper_called = True
                self._fanout._wake(self)
            try:
                outcome: T | BaseException = self.calls[index]()
            except BaseException as error:  # noqa: BLE001  # handed to the caller of `run`, which decides
                outcome = error
            self.outcomes[index] = outcome
            with self._count:
                self._left -= 1
                last = self._left == 0
            if last:
                self.finished.release()

    def help(self) -> None:
        self._helper_called = False
        self.work()


class Fanout:
    """A fixed set of daemon helper threads, started on first use, for the calls of `run`."""

    def __init__(self, threads: int, name: str) -> None:
        if threads < 1:
            raise ValueError("a fanout needs at least one thread")
        self._threads = threads
        self._name = name
        self._queue: SimpleQueue[_Batch[object] | None] = SimpleQueue()
        self._started = 0
        self._lock = threading.Lock()

    def run(self, calls: Sequence[Callable[[], T]]) -> list[T | BaseException]:
        """Run every call, at once as far as they wait on I/O; this thread runs calls too.

        Returns each call's result, or the exception it raised, in the order of `calls`.
        """
        if not calls:
            return []
        batch = _Batch(calls, self)
        batch.work()
        batch.finished.acquire()
        return batch.outcomes  # type: ignore[return-value]  # every slot is filled by now

    def close(self) -> None:
        """Stop the helpers once the batches already handed to them are done."""
        with self._lock:
            for _ in range(self._started):
                self._queue.put(None)
            self._started = 0

    def _wake(self, batch: _Batch[T]) -> None:
        if self._started < self._threads:
            with self._lock:
                if self._started < self._threads:
                    self._started += 1
                    name = f"{self._name}-{self._started}"
                    threading.Thread(target=self._serve, name=name, daemon=True).start()
        self._queue.put(batch)  # type: ignore[arg-type]  # helpers only call work(), whatever T is

    def _serve(self) -> None:
        while (batch := self._queue.get()) is not None:
            batch.help()
