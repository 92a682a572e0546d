"""NCRONTAB, the schedule format of Azure Functions timer triggers, evaluated locally.

Six fields, `{second} {minute} {hour} {day} {month} {day-of-week}` (e.g. `0 */1 * * * *`: second 0 of
every minute), each `*`, a value, a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a comma-separated
list of those. Months and days of the week may be given by their English names (`Jan`, `Mon`); Sunday
is 0 (7 is accepted too). As in NCrontab, which the Functions host uses, a time matches when every
field matches (day and day-of-week are both required to match when both are restricted).

The host also accepts a TimeSpan (`hh:mm:ss`, e.g. `00:00:10`) on App Service plans: the timer then
fires at that interval from the start. `Schedule.parse` accepts both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")


class ScheduleError(ValueError):
    """The expression is not a valid NCRONTAB expression or TimeSpan; the message says why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, tuple(_MONTHS), 1),
    _Field("day-of-week", 0, 7, tuple(_DAYS), 0),
)


def _value(token: str, spec: _Field) -> int:
    lowered = token.lower()
    if spec.names and lowered[:3] in spec.names and lowered.isalpha():
        return spec.names.index(lowered[:3]) + spec.names_start
    if not token.isdigit():
        raise ScheduleError(f"{spec.name}: {token!r} is not a number")
    number = int(token)
    if not spec.low <= number <= spec.high:
        raise ScheduleError(f"{spec.name}: {number} is outside {spec.low}-{spec.high}")
    return number


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"{spec.name}: empty list item in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{spec.name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, spec), _value(last, spec)
            if low > high:
                raise ScheduleError(f"{spec.name}: range {base!r} runs backwards")
        else:
            low = _value(base, spec)
            high = spec.high if slash else low
        values.update(range(low, high + 1, step))
    if spec.name == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: `next_after(t)` is the first firing time strictly after `t`."""

    expression: str
    seconds: frozenset[int] = frozenset()
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    interval: timedelta | None = None  # a TimeSpan schedule

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        text = expression.strip()
        span = _TIMESPAN.match(text)
        if span:
            days, hours, minutes, seconds = (int(g) if g else 0 for g in span.groups())
            if minutes > 59 or seconds > 59 or hours > 23:
                raise ScheduleError(f"{expression!r}: a TimeSpan is [d.]hh:mm:ss")
            interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
            if interval <= timedelta(0):
                raise ScheduleError(f"{expression!r}: the interval must be positive")
            return cls(expression, interval=interval)
        fields = text.split()
        if len(fields) != 6:
            raise ScheduleError(
                f"{expression!r} has {len(fields)} fields; NCRONTAB has 6: "
                "{second} {minute} {hour} {day} {month} {day-of-week}, e.g. '0 */1 * * * *'"
            )
        second, minute, hour, day, month, weekday = (
            _parse_field(value, spec) for value, spec in zip(fields, _FIELDS, strict=True)
        )
        return cls(expression, second, minute, hour, day, month, weekday)

    def next_after(self, after: datetime) -> datetime:
        """The first time strictly after `after` (UTC; a naive time is taken as UTC)."""
        start = after.replace(tzinfo=UTC) if after.tzinfo is None else after.astimezone(UTC)
        if self.interval is not None:
            return start + self.interval
        t = start.replace(microsecond=0) + timedelta(seconds=1)
        limit = t + timedelta(days=366 * 5)  # every valid schedule fires within 4 years (Feb 29)
        while t < limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = t.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
                continue
            if t.day not in self.days or (t.isoweekday() % 7) not in self.weekdays:
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
                continue
            if t.second not in self.seconds:
                t += timedelta(seconds=1)
                continue
            return t
        raise ScheduleError(f"{self.expression!r} never fires")
