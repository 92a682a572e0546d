""".NET TimeSpan text, as the Functions host reads it in host.json, retry policies and timer schedules.

The one reader of TimeSpans in devstack (host.json's `functionTimeout`, the queues' `visibilityTimeout`
and `maxPollingInterval`, the Event Hubs' `maxWaitTime`, `@app.retry` intervals, and a timer's TimeSpan
schedule). The forms are .NET's `TimeSpan.Parse` ones (learn.microsoft.com/dotnet/api/system.timespan.parse):
`[-]d`, `[-][d.]hh:mm[:ss[.fffffff]]` and `[-]d:hh:mm:ss[.fffffff]`, hours 0-23 and minutes and
seconds 0-59; and, as the timer trigger's documentation says of `hh:mm:ss`, a first number of 24 or more
makes it `dd:hh:mm` (learn.microsoft.com/azure/azure-functions/functions-bindings-timer, "TimeSpan").
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_FORM = re.compile(
    r"""\s*(?P<sign>-)?(?:
        (?P<days>\d{1,9})                                # d
      | (?:(?P<day>\d{1,9})(?:\.(?=\d+:)|:(?=\d+:\d+:)))?  # d. before hh:mm, d: before hh:mm:ss
        (?P<hours>\d{1,9}):(?P<minutes>\d{1,9})
        (?::(?P<seconds>\d{1,9})(?:\.(?P<fraction>\d{1,7}))?)?
    )\s*""",
    re.VERBOSE | re.ASCII,
)


class TimeSpanError(ValueError):
    """The text is not a TimeSpan; the message says which form it should have."""


def parse(text: str) -> timedelta:
    """The TimeSpan `text` stands for (negative with a leading `-`, as in .NET)."""
    match = _FORM.fullmatch(text)
    if match is None:
        raise TimeSpanError(f"{text!r} is not a TimeSpan: [d.]hh:mm[:ss[.fffffff]] or d")
    try:
        return (-1 if match["sign"] else 1) * _span(match)
    except OverflowError:
        raise TimeSpanError(f"{text!r} is longer than a TimeSpan can be") from None


def _span(match: re.Match[str]) -> timedelta:
    if match["days"] is not None:
        return timedelta(days=int(match["days"]))
    days = int(match["day"] or 0)
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = int(match["seconds"] or 0)
    if match["day"] is None and match["seconds"] is not None and hours >= 24 and not match["fraction"]:
        days, hours, minutes, seconds = hours, minutes, seconds, 0  # "24:00:00" is dd:hh:mm
    if hours > 23 or minutes > 59 or seconds > 59:
        raise TimeSpanError(f"{match.string!r} is out of range: hours 0-23, minutes and seconds 0-59")
    fraction = float(f"0.{match['fraction']}") if match["fraction"] else 0.0
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds + fraction)


def seconds(value: Any, default: float) -> float:
    """A setting's TimeSpan in seconds; `default` when it is not set (None or empty)."""
    if value is None or value == "":
        return default
    return parse(str(value)).total_seconds()
