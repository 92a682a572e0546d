"""The timer and queue triggers of the local host: the registered functions called as the host would.

- `TimerTrigger`: fires on an NCRONTAB schedule (devstack.ncrontab) with a `TimerRequest`; never two
  runs at once; `run_now()` runs it immediately (the local host's `POST /admin/functions/<name>`).
- `QueuePoller`: polls a queue through `devstack.queue_runner.QueueRunner` (visibility timeout,
  dequeue count, poison queue), backing off to `max_polling_interval` while the queue is empty.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.functions.timer import TimerRequest

from devstack.ncrontab import Schedule
from devstack.queue_runner import QueueRunner

log = logging.getLogger("signals_export.devstack.triggers")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class TimerTrigger:
    """Calls a timer function on its schedule, in a thread of its own."""

    def __init__(
        self,
        name: str,
        handler: Callable[[func.TimerRequest], Any],
        schedule: Schedule,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._handler = handler
        self.schedule = schedule
        self._clock = clock
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: datetime | None = None
        self.next: datetime | None = None
        self.runs = 0
        self.failures = 0
        self.last_error = ""

    def start(self) -> None:
        self.next = self.schedule.next_after(self._clock())
        self._thread = threading.Thread(target=self._loop, name=f"timer-{self.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = self.next or self.schedule.next_after(self._clock())
            wait = (due - self._clock()).total_seconds()
            if wait > 0 and self._stop.wait(min(wait, 1.0)):
                return
            if wait > 0:
                continue
            past_due = (self._clock() - due).total_seconds() > 5
            self._fire(past_due=past_due)
            self.next = self.schedule.next_after(self._clock())

    def run_now(self) -> None:
        """Run the function now (waits for a run in progress first); raises what the function raised."""
        self._fire(past_due=False, raise_errors=True)

    def _fire(self, *, past_due: bool, raise_errors: bool = False) -> None:
        with self._run_lock:
            now = self._clock()
            request = TimerRequest(
                past_due=past_due,
                schedule_status={
                    "Last": _iso(self.last),
                    "Next": _iso(self.schedule.next_after(now)),
                    "LastUpdated": _iso(now),
                },
                schedule={"AdjustForDST": True},
            )
            self.last = now
            self.runs += 1
            try:
                self._handler(request)
            except Exception as error:
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {error}"[:500]
                log.exception("timer function failed", extra={"function": self.name})
                if raise_errors:
                    raise

    def status(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule.expression,
            "last": _iso(self.last),
            "next": _iso(self.next),
            "runs": self.runs,
            "failures": self.failures,
            "lastError": self.last_error or None,
        }

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._run_lock:  # a run in progress ends first
            pass


class QueuePoller:
    """Runs a QueueRunner in a thread: polls fast while there is work, backs off when there is none."""

    def __init__(self, runner: QueueRunner, *, max_polling_interval: float = 5.0) -> None:
        self.runner = runner
        self.max_polling_interval = max_polling_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0
        self.errors = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="queue-poller", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Poll now (e.g. right after messages were enqueued)."""
        self._wake.set()

    def _loop(self) -> None:
        interval = 0.1
        while not self._stop.is_set():
            try:
                handled = self.runner.run_once()
            except Exception:
                self.errors += 1
                log.exception("queue polling failed")
                handled = 0
            self.handled += handled
            interval = 0.1 if handled else min(self.max_polling_interval, interval * 2)
            if handled:
                continue
            self._wake.wait(interval)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    @property
    def failures(self) -> int:
        return len(self.runner.failures)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
