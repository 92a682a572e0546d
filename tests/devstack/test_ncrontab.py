"""The NCRONTAB evaluator of the local host's timer: the Functions schedule format, with seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devstack.ncrontab import Schedule, ScheduleError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_minute_fires_at_second_zero_of_the_next_minute() -> None:
    """`0 */1 * * * *` (HEALTH_SCHEDULE) fires at second 0 of every minute, strictly after the time given."""
    schedule = Schedule.parse("0 */1 * * * *")
    assert schedule.next_after(at("2024-05-01T10:15:42")) == at("2024-05-01T10:16:00")
    assert schedule.next_after(at("2024-05-01T10:16:00")) == at("2024-05-01T10:17:00")
    assert schedule.next_after(at("2024-12-31T23:59:30")) == at("2025-01-01T00:00:00")


def test_steps_ranges_lists_and_names() -> None:
    """Steps, ranges, lists and English names work in every field, as in the Functions docs' examples."""
    assert Schedule.parse("*/15 * * * * *").next_after(at("2024-05-01T10:00:16")) == at("2024-05-01T10:00:30")
    assert Schedule.parse("0 30 9 * * 1-5").next_after(at("2024-05-03T09:30:00")) == at("2024-05-06T09:30:00")
    assert Schedule.parse("0 0 9-17/4 * * *").next_after(at("2024-05-01T13:00:00")) == at(
        "2024-05-01T17:00:00"
    )
    assert Schedule.parse("0 0 0 1 Jan,Jul *").next_after(at("2024-02-10T00:00:00")) == at(
        "2024-07-01T00:00:00"
    )
    assert Schedule.parse("0 0 12 * * Sun").next_after(at("2024-05-01T00:00:00")) == at("2024-05-05T12:00:00")
    assert Schedule.parse("0 0 12 * * 7").next_after(at("2024-05-01T00:00:00")) == at("2024-05-05T12:00:00")
    assert Schedule.parse("5/20 * * * * *").seconds == frozenset({5, 25, 45})


def test_day_and_weekday_must_both_match_as_in_ncrontab() -> None:
    """Friday the 13th: NCrontab requires the day and the day of the week to match together."""
    schedule = Schedule.parse("0 0 0 13 * 5")
    assert schedule.next_after(at("2024-01-01T00:00:00")) == at("2024-09-13T00:00:00")


def test_leap_day_and_timespan_schedules() -> None:
    """29 February is found years ahead; a TimeSpan (`00:00:10`) fires at that interval."""
    assert Schedule.parse("0 0 0 29 2 *").next_after(at("2024-03-01T00:00:00")) == at("2028-02-29T00:00:00")
    span = Schedule.parse("00:00:10")
    assert span.interval == timedelta(seconds=10)
    assert span.next_after(at("2024-05-01T10:00:03")) == at("2024-05-01T10:00:13")


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("*/1 * * * *", "6"),
        ("60 * * * * *", "second"),
        ("0 0 25 * * *", "hour"),
        ("0 0 0 31 2 *", "never fires"),
        ("0 */0 * * * *", "step"),
        ("0 5-1 * * * *", "backwards"),
        ("0 x * * * *", "minute"),
    ],
)
def test_malformed_schedules_are_refused_with_the_reason(expression: str, says: str) -> None:
    """A wrong field count, an out-of-range value, a zero step or an impossible date is refused clearly."""
    with pytest.raises(ScheduleError, match=says):
        Schedule.parse(expression).next_after(at("2024-01-01T00:00:00"))
