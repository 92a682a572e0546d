"""Timer trigger rows: the health check's schedule, past-due runs, one run at a time, no retry."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest

from devstack.functions import registered_functions
from devstack.host import template_settings
from devstack.schedule import Schedule
from devstack.triggers import ScheduleStatus, TimerTrigger, check_past_due, wait_until
from tests.conformance import sources

NOW = datetime(2026, 3, 7, 9, 41, 30, tzinfo=UTC)
EVERY_MINUTE = Schedule.parse("0 */1 * * * *")


def test_the_health_schedule_is_six_field_ncrontab_with_seconds() -> None:
    """check_health runs on %HEALTH_SCHEDULE%: six fields, the first being seconds (CronSchedule parses
    six fields with IncludingSeconds); the default fires at second 0 of every minute."""
    trigger = registered_functions()["check_health"].trigger
    assert trigger["schedule"] == "%HEALTH_SCHEDULE%"
    assert trigger.get("useMonitor", sources.TIMER_USE_MONITOR_DEFAULT) is True
    expression = template_settings()["HEALTH_SCHEDULE"]
    assert len(expression.split()) == 6
    schedule = Schedule.parse(expression)
    first = schedule.next_after(NOW)
    assert (first, schedule.next_after(first)) == (
        NOW.replace(minute=42, second=0),
        NOW.replace(minute=43, second=0),
    )


def test_a_missed_occurrence_is_past_due_at_start_up_and_a_schedule_change_is_not() -> None:
    """ScheduleMonitor.CheckPastDueAsync: a recorded Next in the past means the host was down; a
    recorded Next that the schedule no longer gives is recomputed, not past due."""
    missed = ScheduleStatus(
        NOW - timedelta(minutes=10, seconds=30), NOW - timedelta(minutes=9, seconds=30), None
    )
    late, recorded = check_past_due(NOW, EVERY_MINUTE, missed)
    assert late == timedelta(minutes=9, seconds=30) and recorded == missed
    hourly = Schedule.parse("0 0 * * * *")
    late, recorded = check_past_due(NOW, hourly, missed)
    assert late == timedelta(0) and recorded.next == NOW.replace(hour=10, minute=0, second=0)
    first, recorded = check_past_due(NOW, EVERY_MINUTE, None)
    assert first == timedelta(0) and recorded == ScheduleStatus(None, NOW.replace(minute=42, second=0), NOW)


def test_only_the_catch_up_run_after_a_missed_occurrence_is_past_due(tmp_path: Path) -> None:
    """Started with a recorded occurrence in the past, the timer runs at once with IsPastDue, then on
    its schedule without it; each run records Last and Next as the schedule monitor does."""
    runs: list[func.TimerRequest] = []
    status = tmp_path / "timers" / "check_health.json"
    status.parent.mkdir()
    now = datetime.now(UTC)
    last = (now - timedelta(hours=1)).replace(microsecond=0)
    every_second = Schedule.parse("* * * * * *")
    status.write_text(json.dumps(ScheduleStatus(last, every_second.next_after(last), last).to_json()))
    timer = TimerTrigger("check_health", runs.append, every_second, status_file=status)
    timer.start()
    try:
        assert wait_until(lambda: len(runs) >= 3, 30)
    finally:
        timer.stop()
    assert [run.past_due for run in runs[:3]] == [True, False, False]
    assert runs[1].schedule_status["Last"] and runs[1].schedule_status["Next"]
    recorded = ScheduleStatus.from_json(json.loads(status.read_text()))
    assert recorded.last is not None and recorded.last > now and recorded.next > recorded.last


def test_runs_never_overlap_and_a_failed_run_is_not_retried(tmp_path: Path) -> None:
    """The timer never runs twice at once (the listener's invocation lock, a singleton across
    instances); a failure waits for the next occurrence: check_health has no retry policy."""
    assert registered_functions()["check_health"].retry is None
    running, most, calls = 0, 0, 0
    lock = threading.Lock()

    def slow_failure(_: func.TimerRequest) -> None:
        nonlocal running, most, calls
        with lock:
            running, calls = running + 1, calls + 1
            most = max(most, running)
        threading.Event().wait(0.3)
        with lock:
            running -= 1
        raise RuntimeError("storage down")

    timer = TimerTrigger("t", slow_failure, Schedule.parse("* * * * * *"), status_file=tmp_path / "t.json")
    timer.start()
    try:
        assert wait_until(lambda: timer.failures >= 2, 30)
        with pytest.raises(RuntimeError):
            timer.run_now()
    finally:
        timer.stop()
    assert most == 1 and calls == timer.runs == timer.failures
