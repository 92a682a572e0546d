"""The timer and queue triggers of the local host: the registered functions called as the host would.

- `TimerTrigger`: fires on an NCRONTAB schedule (devstack.schedule), never two runs at once, with the
  `TimerRequest` the worker builds from the host's TimerInfo. Like the timer extension's schedule
  monitor, it keeps the schedule's status (Last, Next, LastUpdated) in a file; when the host starts
  after an occurrence was missed, it runs at once with `past_due` set, and only then. `run_now()`
  runs it immediately (the local host's `POST /admin/functions/<name>`).
- `QueuePoller`: polls a queue through `devstack.queue_runner.QueueRunner` (visibility timeout,
  dequeue count, poison queue), backing off to `max_polling_interval` while the queue is empty.

Sources and divergences: docs/conformance.md, "Timer trigger" and "Queue trigger".
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

from devstack.queue_runner import QueueRunner
from devstack.schedule import Schedule

log = logging.getLogger("signals_export.devstack.triggers")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@dataclass(frozen=True)
class ScheduleStatus:
    """What the timer extension's ScheduleMonitor records per timer: the last run (None: never), the
    next occurrence, and the time `next` was computed from (None: never)."""

    last: datetime | None
    next: datetime
    last_updated: datetime | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "Last": _dotnet(self.last),
            "Next": _dotnet(self.next),
            "LastUpdated": _dotnet(self.last_updated),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ScheduleStatus:
        return cls(_parsed(raw.get("Last")), _parsed(raw["Next"]) or _EPOCH, _parsed(raw.get("LastUpdated")))


_EPOCH = datetime(1, 1, 1, tzinfo=UTC)  # default(DateTime): "never"


def _dotnet(moment: datetime | None) -> str:
    return (moment or _EPOCH).astimezone(UTC).isoformat()


def _parsed(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return None if moment == _EPOCH else moment


def check_past_due(
    now: datetime, schedule: Schedule, status: ScheduleStatus | None
) -> tuple[timedelta, ScheduleStatus]:
    """How late the timer is at start-up, and the status to record: ScheduleMonitor.CheckPastDueAsync.

    A recorded Next that no longer follows from the schedule (the schedule changed) is recomputed, from
    now if it is in the past, so that a schedule change never counts as a missed occurrence."""
    if status is None:
        return timedelta(0), ScheduleStatus(None, schedule.next_after(now), now)
    if status.last is not None:
        expected, updated = schedule.next_after(status.last), status.last
    elif status.last_updated is not None:
        expected, updated = schedule.next_after(status.last_updated), status.last_updated
    else:
        expected, updated = schedule.next_after(now), now
    if status.next != expected:
        if now > expected:
            expected, updated = schedule.next_after(now), now
        status = ScheduleStatus(None, expected, updated)
    return (now - status.next if now > status.next else timedelta(0)), status


class TimerTrigger:
    """Calls a timer function on its schedule, in a thread of its own."""

    def __init__(
        self,
        name: str,
        handler: Callable[[func.TimerRequest], Any],
        schedule: Schedule,
        *,
        status_file: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._handler = handler
        self.schedule = schedule
        self.status_file = status_file  # None: the schedule is not monitored (useMonitor false)
        self._clock = clock
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status_record: ScheduleStatus | None = None
        self.missed: timedelta = timedelta(0)
        self.last: datetime | None = None
        self.next: datetime | None = None
        self.runs = 0
        self.past_due_runs = 0
        self.failures = 0
        self.last_error = ""

    def load(self) -> None:
        """Read the recorded status and check it, as the listener does when it starts."""
        now = self._clock()
        if self.status_file is None:
            self.next = self.schedule.next_after(now)
            return
        recorded = self._read_status()
        self.missed, self.status_record = check_past_due(now, self.schedule, recorded)
        self._write_status(self.status_record)
        self.next = self.status_record.next

    def start(self) -> None:
        self.load()
        self._thread = threading.Thread(target=self._loop, name=f"timer-{self.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        if self.missed > timedelta(0):
            self.fire_scheduled(past_due=True)
        while not self._stop.is_set():
            due = self.next or self.schedule.next_after(self._clock())
            wait = (due - self._clock()).total_seconds()
            if wait > 0:
                if self._stop.wait(min(wait, 1.0)):
                    return
                continue
            self.fire_scheduled(past_due=False)

    def fire_scheduled(self, *, past_due: bool) -> None:
        """One run of the schedule (TimerListener.InvokeJobFunction): the function, then the status."""
        invoked = self._clock()
        self._fire(past_due=past_due)
        recorded_next = self.status_record.next if self.status_record is not None else self.next
        adjusted = invoked
        if not past_due and recorded_next is not None and recorded_next > invoked:
            adjusted = recorded_next  # fired a moment early: never the same Next twice
        self.next = self.schedule.next_after(adjusted)
        if self.status_file is not None:
            self.status_record = ScheduleStatus(adjusted, self.next, adjusted)
            self._write_status(self.status_record)

    def run_now(self) -> None:
        """Run the function now (waits for a run in progress first); raises what the function raised.
        Like the host's admin invocation, it neither is past due nor moves the schedule."""
        self._fire(past_due=False, raise_errors=True)

    def _fire(self, *, past_due: bool, raise_errors: bool = False) -> None:
        with self._run_lock:
            now = self._clock()
            info = {
                "Schedule": {"AdjustForDST": True},
                "ScheduleStatus": self.status_record.to_json() if self.status_record is not None else None,
                "IsPastDue": past_due,
            }
            request = TimerRequestConverter.decode(meta.Datum(json.dumps(info), "json"), trigger_metadata={})
            self.last = now
            self.runs += 1
            self.past_due_runs += past_due
            try:
                self._handler(request)
            except Exception as error:
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {error}"[:500]
                log.exception("timer function failed", extra={"function": self.name})
                if raise_errors:
                    raise

    def _read_status(self) -> ScheduleStatus | None:
        assert self.status_file is not None
        try:
            return ScheduleStatus.from_json(json.loads(self.status_file.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_status(self, status: ScheduleStatus) -> None:
        assert self.status_file is not None
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        temp = self.status_file.with_suffix(".tmp")
        temp.write_text(json.dumps(status.to_json()))
        temp.replace(self.status_file)

    def status(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule.expression,
            "monitored": self.status_file is not None,
            "last": _iso(self.last),
            "next": _iso(self.next),
            "runs": self.runs,
            "pastDueRuns": self.past_due_runs,
            "failures": self.failures,
            "lastError": self.last_error or None,
        }

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._run_lock:  # a run in progress ends first
            pass


class PollingBackoff:
    """The queue listener's wait between polls of an empty queue: from 100 ms up to
    `maxPollingInterval`, doubling with a random 0.8-1.2 factor, back to 100 ms once a message came
    (the extension's RandomizedExponentialBackoffStrategy with QueuePollingIntervals.Minimum)."""

    MINIMUM = 0.1

    def __init__(self, maximum: float, rng: random.Random | None = None) -> None:
        self.maximum = max(maximum, self.MINIMUM)
        self._rng = rng or random.Random()
        self._exponent = 0
        self.current = self.MINIMUM

    def next_delay(self, *, found: bool) -> float:
        if found:
            self._exponent, self.current = 1, self.MINIMUM
        elif self.current != self.maximum:
            interval = self.MINIMUM
            if self._exponent > 0:
                interval += self._rng.uniform(0.8, 1.2) * 2 ** (self._exponent - 1) * self.MINIMUM
            if interval < self.maximum:
                self.current, self._exponent = interval, self._exponent + 1
            else:
                self.current = self.maximum
        return self.current


class QueuePoller:
    """Runs a QueueRunner in a thread: a new batch whenever few enough messages are running, and a
    randomized exponential wait while the queue is empty."""

    def __init__(self, runner: QueueRunner, *, max_polling_interval: float = 5.0) -> None:
        self.runner = runner
        self.max_polling_interval = max_polling_interval
        self._backoff = PollingBackoff(max_polling_interval)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0
        self.errors = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="queue-poller", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Poll now (e.g. right after messages were enqueued), as the host's queue watcher does."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.runner.in_flight > self.runner.threshold:
                self._stop.wait(0.05)  # the host waits for running messages, not a polling interval
                continue
            try:
                handled = self.runner.poll()
            except Exception:
                self.errors += 1
                log.exception("queue polling failed")
                handled = 0
            self.handled += handled
            if handled:
                self._backoff.next_delay(found=True)
                continue
            self._wake.wait(self._backoff.next_delay(found=False))
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.runner.close()

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
