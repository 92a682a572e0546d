"""The timer trigger's schedule as the Functions host reads it: NCRONTAB, evaluated by croniter.

The timer extension hands the expression to NCrontab (Azure/azure-webjobs-sdk-extensions,
`Extensions/Timers/Scheduling/CronSchedule.cs`: six fields with seconds first, `{second} {minute}
{hour} {day} {month} {day-of-week}`, unless it has exactly five, which are read without seconds, i.e. at
second 0). croniter (`second_at_beginning`) evaluates it once each field is written in croniter's own
syntax, for where the two read a field differently (atifaziz/NCrontab, `CrontabFieldImpl.cs` and
`CrontabField.cs`):

- names: NCrontab takes any prefix of an English name in any case (`M` is March, `Augu`, `SEPT`,
  `Monday`); croniter only three letters. Names become numbers.
- a range written backwards (`5-1`) is the same range forwards in NCrontab; croniter wraps around.
- a step below 1 (`*/0`) is a step of 1 in NCrontab; croniter refuses it. `a/n` runs to the field's end.
- days of the week are 0-6, Sunday 0: NCrontab refuses 7. croniter's extensions (`L`, `W`, `#`, `?`,
  `H`, a year field) are not NCRONTAB and are refused.
- a day and a day of the week both restricted must both match (NCrontab checks the day of the week
  after the date; croniter's `day_or=False`).

A TimeSpan (`hh:mm:ss`, `devstack.timespan`) is a schedule too, on App Service plans only: on the
Consumption plans, Flex Consumption among them, the host refuses any schedule that is not CRON
(Azure/azure-functions-host `TimerTriggerPlatformOptionsSetup.cs`, `CoreExtensionsScriptBindingProvider.cs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, croniter

from devstack import timespan

# WEBSITE_SKU values of the plans whose host refuses a TimeSpan schedule; the app runs on Flex
# Consumption (infra/app/api.bicep), which is what the local host takes when WEBSITE_SKU is not set.
CONSUMPTION_SKUS = frozenset({"dynamic", "flexconsumption"})
DEPLOYED_SKU = "FlexConsumption"


class ScheduleError(ValueError):
    """The expression is not a schedule the host would run; the message says why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


_MONTHS = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 6, _DAYS),
)


def _value(token: str, field: _Field) -> int:
    """A number, or (month, day of the week) a prefix of a name, in any case."""
    if token[:1].isdigit():
        if not (token.isascii() and token.isdigit()):
            raise ScheduleError(f"{field.name}: {token!r} is not a number")
        return int(token)
    for index, name in enumerate(field.names):
        if token and name.lower().startswith(token.lower()):
            return field.low + index
    kind = "a number or a name" if field.names else "a number"
    raise ScheduleError(f"{field.name}: {token!r} is not {kind}")


def _step(text: str, field: _Field) -> int:
    """A step; below 1 it is 1, as NCrontab takes it (`CrontabField.Accumulate`)."""
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()):
        raise ScheduleError(f"{field.name}: the step {text!r} is not a whole number")
    return max(int(text), 1)


def _checked(value: int, field: _Field) -> int:
    if not field.low <= value <= field.high:
        raise ScheduleError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _item(text: str, field: _Field) -> str:
    """One item of a list (`*`, `a`, `a-b`, each with an optional `/step`) in croniter's syntax."""
    base, slash, step_text = text.partition("/")
    step = _step(step_text, field) if slash else 1
    if base == "*":
        return "*" if step == 1 else f"*/{step}"
    if not base:
        raise ScheduleError(f"{field.name}: {text!r} has no value")
    first_text, dash, last_text = base.partition("-")
    if dash:
        if not first_text:
            raise ScheduleError(f"{field.name}: {text!r} has no value before '-'")
        first, last = sorted((_value(first_text, field), _value(last_text, field)))
    else:
        first = _value(base, field)
        last = max(first, field.high) if slash else first
        first, last = min(first, last), max(first, last)
    first, last = _checked(first, field), _checked(last, field)
    if first == last:
        return str(first)
    return f"{first}-{last}" if step == 1 else f"{first}-{last}/{step}"


def _field(text: str, field: _Field) -> str:
    items = text.split(",")
    if any(not item for item in items):
        raise ScheduleError(f"{field.name}: an empty item in {text!r}")
    return ",".join(_item(item, field) for item in items)


def croniter_expression(expression: str) -> str:
    """The NCRONTAB expression in croniter's syntax, seconds first (five fields: at second 0)."""
    fields = expression.split(" ")  # NCrontab splits on spaces only
    fields = [field for field in fields if field]
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ScheduleError(
            f"{expression!r} has {len(fields)} fields; NCRONTAB has 6, {{second}} {{minute}} {{hour}} "
            "{day} {month} {day-of-week} (e.g. '0 */5 * * * *'), or 5 without seconds"
        )
    return " ".join(_field(text, spec) for text, spec in zip(fields, _FIELDS, strict=True))


def takes_timespans(sku: str) -> bool:
    """Whether the host of a plan (its WEBSITE_SKU) takes a TimeSpan schedule: not on Consumption ones."""
    return sku.strip().lower() not in CONSUMPTION_SKUS


@dataclass(frozen=True)
class Schedule:
    """A timer's schedule: `next_after(t)` is the first occurrence strictly after `t` (UTC)."""

    expression: str
    cron: str = ""  # croniter's expression, seconds first
    interval: timedelta | None = None  # a TimeSpan schedule

    @classmethod
    def parse(cls, expression: str, *, timespans: bool = False) -> Schedule:
        """NCRONTAB, else (`timespans`: an App Service plan) a TimeSpan, as TimerSchedule.Create tries."""
        try:
            schedule = cls(expression, cron=croniter_expression(expression))
        except ScheduleError as not_cron:
            interval = _timespan(expression)
            if interval is None:
                raise
            if not timespans:
                raise ScheduleError(
                    f"{expression!r} is a TimeSpan: on Consumption plans (this app's Flex Consumption "
                    "among them) the host takes only NCRONTAB, e.g. '*/10 * * * * *'"
                ) from not_cron
            if interval <= timedelta(0):
                raise ScheduleError(f"{expression!r}: the interval must be positive") from None
            return cls(expression, interval=interval)
        schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # refuses a date that never comes
        return schedule

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after `after` (a naive time is taken as UTC)."""
        start = after.replace(tzinfo=UTC) if after.tzinfo is None else after.astimezone(UTC)
        if self.interval is not None:
            return start + self.interval
        try:
            found = croniter(self.cron, start, day_or=False, second_at_beginning=True).get_next(datetime)
        except CroniterBadDateError:
            raise ScheduleError(f"{self.expression!r} never fires (no such date)") from None
        return found.astimezone(UTC)

    def fires_often(self, now: datetime) -> bool:
        """More than once in the minute after `now`: the timer extension then keeps no schedule status
        (TimerSchedule.Create sets UseMonitor to false)."""
        if self.interval is not None:
            return self.interval < timedelta(minutes=1)
        first = self.next_after(now)
        return self.next_after(first) < now + timedelta(minutes=1)


def _timespan(expression: str) -> timedelta | None:
    try:
        return timespan.parse(expression)
    except timespan.TimeSpanError:
        return None
