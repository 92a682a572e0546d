"""The local host timer's schedule: NCRONTAB as the Functions host reads it (NCrontab), evaluated by
croniter; a TimeSpan only where the host takes one."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.errors import DevstackError
from devstack.host import timer_trigger
from devstack.schedule import DEPLOYED_SKU, Schedule, ScheduleError, takes_timespans


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
    assert Schedule.parse("0 0 12 * * 0").next_after(at("2024-05-01T00:00:00")) == at("2024-05-05T12:00:00")
    every_twenty = Schedule.parse("5/20 * * * * *")  # from second 5 to the field's end: 5, 25, 45
    seconds = [at("2024-05-01T10:00:00")]
    for _ in range(4):
        seconds.append(every_twenty.next_after(seconds[-1]))
    assert [moment.second for moment in seconds[1:]] == [5, 25, 45, 5]


def test_names_are_any_prefix_in_any_case_as_ncrontab_reads_them() -> None:
    """NCrontab takes any prefix of an English name, in any case (`M` is March, `SEPT`, `Monday`);
    croniter takes three letters only, so the adapter turns names into numbers."""
    assert Schedule.parse("0 0 0 1 M *").next_after(at("2024-01-10T00:00:00")) == at("2024-03-01T00:00:00")
    assert Schedule.parse("0 0 0 1 SEPT-October *").next_after(at("2024-01-10T00:00:00")) == at(
        "2024-09-01T00:00:00"
    )
    assert Schedule.parse("0 30 9 * january Monday").next_after(at("2024-01-02T00:00:00")) == at(
        "2024-01-08T09:30:00"
    )


def test_day_and_weekday_must_both_match_as_in_ncrontab() -> None:
    """Friday the 13th: NCrontab requires the day and the day of the week to match together."""
    schedule = Schedule.parse("0 0 0 13 * 5")
    assert schedule.next_after(at("2024-01-01T00:00:00")) == at("2024-09-13T00:00:00")


def test_five_fields_are_read_without_seconds_as_the_host_reads_them() -> None:
    """CronSchedule.HasSeconds: exactly five fields are minutes to days of the week, at second 0."""
    schedule = Schedule.parse("*/5 * * * *")
    assert schedule.next_after(at("2024-05-01T10:01:30")) == at("2024-05-01T10:05:00")
    assert schedule.next_after(at("2024-05-01T10:05:00")) == at("2024-05-01T10:10:00")


def test_backwards_ranges_and_zero_steps_read_as_ncrontab_reads_them() -> None:
    """NCrontab swaps a range written backwards (`5-1` is minutes 1 to 5, where croniter would wrap
    around) and takes a step below 1 as 1 (CrontabField.Accumulate): the host runs both."""
    backwards = Schedule.parse("0 5-1 * * * *")
    assert backwards.next_after(at("2024-05-01T10:05:00")) == at("2024-05-01T11:01:00")
    assert Schedule.parse("0 */0 * * * *").next_after(at("2024-05-01T10:15:42")) == at("2024-05-01T10:16:00")


def test_leap_day_and_timespan_schedules() -> None:
    """29 February is found years ahead; a TimeSpan (`00:00:10`) fires at that interval, on App Service
    plans only: the host of a Consumption plan (Flex Consumption, this app's) refuses it."""
    assert Schedule.parse("0 0 0 29 2 *").next_after(at("2024-03-01T00:00:00")) == at("2028-02-29T00:00:00")
    span = Schedule.parse("00:00:10", timespans=True)
    assert span.interval == timedelta(seconds=10)
    assert span.next_after(at("2024-05-01T10:00:03")) == at("2024-05-01T10:00:13")
    with pytest.raises(ScheduleError, match="Consumption"):
        Schedule.parse("00:00:10")
    assert not takes_timespans(DEPLOYED_SKU) and not takes_timespans("Dynamic")
    assert takes_timespans("ElasticPremium") and takes_timespans("Standard")


def test_a_schedule_that_fires_more_than_once_a_minute_is_not_monitored() -> None:
    """TimerSchedule.Create turns UseMonitor off when two occurrences fall in the next minute (or a
    TimeSpan is under a minute)."""
    now = at("2024-05-01T10:15:42")
    assert Schedule.parse("*/10 * * * * *").fires_often(now)
    assert not Schedule.parse("0 */1 * * * *").fires_often(now)
    assert Schedule.parse("00:00:30", timespans=True).fires_often(now)
    assert not Schedule.parse("00:05:00", timespans=True).fires_often(now)


def test_the_local_host_reads_the_schedule_as_the_host_of_the_app_s_plan(tmp_path: Path) -> None:
    """HEALTH_SCHEDULE as a TimeSpan stops the local host as it stops the Functions host on Flex
    Consumption (WEBSITE_SKU unset: the app's plan); on an App Service plan it runs, unmonitored under a
    minute; the NCRONTAB default keeps its status file."""
    with pytest.raises(DevstackError, match="Consumption"):
        timer_trigger({"HEALTH_SCHEDULE": "00:00:10"}, tmp_path)
    dedicated = timer_trigger({"HEALTH_SCHEDULE": "00:00:10", "WEBSITE_SKU": "ElasticPremium"}, tmp_path)
    assert dedicated.schedule.interval == timedelta(seconds=10) and dedicated.status_file is None
    default = timer_trigger({"HEALTH_SCHEDULE": "0 */1 * * * *"}, tmp_path)
    assert default.status_file == tmp_path / "timers" / "check_health.json"


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("*/1 * * *", "fields"),
        ("0 0 0 1 * * 2025", "fields"),
        ("60 * * * * *", "second"),
        ("0 0 25 * * *", "hour"),
        ("0 0 12 * * 7", "day-of-week"),
        ("0 0 0 31 2 *", "never fires"),
        ("0 x * * * *", "minute"),
        ("0 0 0 L * *", "day"),
        ("0 0 0 ? * *", "day"),
        ("0 0 0 * * 1#2", "day-of-week"),
        ("0 0 0 1, * *", "empty"),
        ("0 */x * * * *", "step"),
        ("0 -5 * * * *", "minute"),
    ],
)
def test_malformed_schedules_are_refused_with_the_reason(expression: str, says: str) -> None:
    """A wrong field count, a value out of range (days of the week are 0-6: NCrontab refuses 7), an
    impossible date or croniter's own extensions are refused clearly."""
    with pytest.raises(ScheduleError, match=says):
        Schedule.parse(expression).next_after(at("2024-01-01T00:00:00"))


# -- the adapter against NCRONTAB, on generated expressions --------------------------------------------
# The reference reads the documented grammar (learn.microsoft.com/azure/azure-functions/
# functions-bindings-timer, "NCRONTAB expressions") with NCrontab's answers where the docs say nothing
# (atifaziz/NCrontab CrontabFieldImpl.cs, CrontabField.cs, CrontabSchedule.cs), and finds occurrences by
# looking at every day in turn: nothing of it is croniter's or the adapter's.

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September"]
MONTHS += ["October", "November", "December"]
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
SPECS = [(0, 59, []), (0, 59, []), (0, 23, []), (1, 31, []), (1, 12, MONTHS), (0, 6, DAYS)]
ITEM = re.compile(r"(?:(?P<star>\*)|(?P<first>[^-/]+)(?:-(?P<last>[^-/]+))?)(?:/(?P<step>[+-]?[0-9]+))?")
HORIZON_DAYS = 60 * 366


def reference_value(token: str, low: int, names: list[str]) -> int | None:
    if re.fullmatch(r"[0-9]+", token):
        return int(token)
    matching = [
        i for i, name in enumerate(names) if token[:1].isalpha() and name.lower().startswith(token.lower())
    ]
    return low + matching[0] if matching else None


def reference_values(text: str, low: int, high: int, names: list[str]) -> set[int] | None:
    """The values a field stands for, or None when NCrontab refuses it."""
    values: set[int] = set()
    for item in text.split(","):
        match = ITEM.fullmatch(item)
        if match is None:
            return None
        step = max(int(match["step"]), 1) if match["step"] else 1
        if match["star"]:
            start, end = low, high
        else:
            first = reference_value(match["first"], low, names)
            last = reference_value(match["last"], low, names) if match["last"] is not None else None
            if first is None or (match["last"] is not None and last is None):
                return None
            if last is None:
                last = high if match["step"] else first  # `a/n`: from a to the field's end
            start, end = min(first, last), max(first, last)
            if start < low or end > high:
                return None
        values.update(range(start, end + 1, step))
    return values


def reference(expression: str) -> list[list[int]] | None:
    fields = expression.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        return None
    parsed = [reference_values(text, *spec) for text, spec in zip(fields, SPECS, strict=True)]
    if any(values is None for values in parsed):
        return None
    return [sorted(values) for values in parsed if values is not None]


def first_time(fields: list[list[int]], earliest: time) -> time | None:
    seconds, minutes, hours = fields[0], fields[1], fields[2]
    for hour, minute, second in itertools.product(hours, minutes, seconds):
        if (hour, minute, second) >= (earliest.hour, earliest.minute, earliest.second):
            return time(hour, minute, second)
    return None


def reference_next(fields: list[list[int]], after: datetime) -> datetime | None:
    """The first second strictly after `after` whose every field matches (day and weekday both)."""
    start = after.replace(microsecond=0) + timedelta(seconds=1)
    day: date = start.date()
    for offset in range(HORIZON_DAYS):
        day = start.date() + timedelta(days=offset)
        if day.month in fields[4] and day.day in fields[3] and day.isoweekday() % 7 in fields[5]:
            found = first_time(fields, start.time() if offset == 0 else time(0))
            if found is not None:
                return datetime.combine(day, found, UTC)
    return None


def value_text(low: int, high: int, names: list[str]) -> st.SearchStrategy[str]:
    number = st.integers(low, high).map(str)
    if not names:
        return number
    name = st.sampled_from(names).flatmap(lambda n: st.integers(1, len(n)).map(lambda k: n[:k]))
    cased = st.tuples(name, st.sampled_from([str.lower, str.upper, str.title])).map(lambda p: p[1](p[0]))
    return st.one_of(number, cased)


def field_text(low: int, high: int, names: list[str]) -> st.SearchStrategy[str]:
    value = value_text(low, high, names)
    step = st.tuples(st.sampled_from(["", "+"]), st.integers(-2, high + 3)).map(
        lambda p: f"/{p[0] if p[1] >= 0 else ''}{p[1]}"
    )
    base = st.one_of(st.just("*"), value, st.tuples(value, value).map(lambda p: f"{p[0]}-{p[1]}"))
    item = st.tuples(base, st.one_of(st.just(""), step)).map("".join)
    return st.lists(item, min_size=1, max_size=3).map(",".join)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    fields = [draw(field_text(*spec)) for spec in SPECS]
    if draw(st.booleans()):
        fields = fields[1:]  # five fields: without seconds
    return draw(st.sampled_from([" ", "  "])).join(fields)


MOMENTS = st.datetimes(datetime(2000, 1, 1), datetime(2090, 12, 31)).map(lambda t: t.replace(tzinfo=UTC))


@settings(max_examples=300, deadline=None)
@given(expression=expressions(), after=MOMENTS)
def test_the_adapter_gives_the_occurrences_ncrontab_gives(expression: str, after: datetime) -> None:
    """On generated NCRONTAB expressions (names, ranges either way, steps, lists, five or six fields),
    the next three occurrences are those of the reference; one that never comes is refused."""
    fields = reference(expression)
    assert fields is not None, expression
    if reference_next(fields, after) is None:
        with pytest.raises(ScheduleError, match="never fires"):
            Schedule.parse(expression)
        return
    schedule = Schedule.parse(expression)
    moment = after
    for _ in range(3):
        expected = reference_next(fields, moment)
        assert schedule.next_after(moment) == expected, (expression, moment)
        assert expected is not None
        moment = expected


TOKENS = ["*", "0", "5", "6", "7", "12", "13", "23", "24", "31", "32", "59", "60", "Mon", "jan", "Sept"]
TOKENS += ["foo", "L", "W", "?", "#", "H", "-", "/", ",", "*/0", "1-", "-1", "/2", "5/+2", "٣", "2/x", ""]


@settings(max_examples=300, deadline=None)
@given(
    fields=st.lists(
        st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3).map("".join), min_size=4, max_size=7
    )
)
def test_the_adapter_refuses_exactly_what_ncrontab_refuses(fields: list[str]) -> None:
    """Expressions from a loose alphabet (croniter's extensions, 7, 60, empty items, signs, other
    digits): the adapter takes one when the reference does, and refuses it otherwise."""
    expression = " ".join(fields)
    parsed = reference(expression)
    if parsed is None:
        with pytest.raises(ScheduleError):
            Schedule.parse(expression)
    elif reference_next(parsed, datetime(2000, 1, 1, tzinfo=UTC)) is not None:
        Schedule.parse(expression)
