"""devstack's one reader of .NET TimeSpans (host.json, retry policies, TimeSpan schedules)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack import timespan


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("00:00:05", timedelta(seconds=5)),
        ("00:10:00", timedelta(minutes=10)),
        ("6", timedelta(days=6)),
        ("6:12", timedelta(hours=6, minutes=12)),
        ("6:12:14:45", timedelta(days=6, hours=12, minutes=14, seconds=45)),
        ("6.12:14:45", timedelta(days=6, hours=12, minutes=14, seconds=45)),
        ("6:12:14:45.3448", timedelta(days=6, hours=12, minutes=14, seconds=45.3448)),
        ("24:00:00", timedelta(days=24)),
        ("-00:01:00", -timedelta(minutes=1)),
    ],
)
def test_the_forms_of_dotnet_timespan_parse(text: str, span: timedelta) -> None:
    """The examples of TimeSpan.Parse's documentation, and the timer docs' `24:00:00` (dd:hh:mm)."""
    assert timespan.parse(text) == span


@pytest.mark.parametrize(
    "text", ["", "x", "1.2.3", "00:60:00", "6:34:14:45", "00:00:60", "1:2:3:4:5", "00:00:05s", "99999999999"]
)
def test_anything_else_is_refused_with_the_form_it_should_have(text: str) -> None:
    """Out-of-range components and other text are refused (TimeSpan.Parse: Overflow or Bad Format)."""
    with pytest.raises(timespan.TimeSpanError, match=r"TimeSpan|range|longer"):
        timespan.parse(text)


def test_an_unset_setting_is_its_default() -> None:
    """None or an empty value is the setting's default; anything else is read as a TimeSpan."""
    assert timespan.seconds(None, 60.0) == 60.0
    assert timespan.seconds("", 1800.0) == 1800.0
    assert timespan.seconds("00:00:30", 0.0) == 30.0
    with pytest.raises(timespan.TimeSpanError):
        timespan.seconds("thirty seconds", 0.0)


@given(
    days=st.integers(0, 400),
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    fraction=st.text("0123456789", min_size=0, max_size=7),
    negative=st.booleans(),
)
def test_every_written_span_reads_back(
    days: int, hours: int, minutes: int, seconds: int, fraction: str, negative: bool
) -> None:
    """`[-][d.]hh:mm:ss[.fffffff]`, as .NET writes a TimeSpan, reads back as the same span."""
    text = f"{'-' if negative else ''}{f'{days}.' if days else ''}{hours:02}:{minutes:02}:{seconds:02}"
    text += f".{fraction}" if fraction else ""
    span = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds + float(f"0.{fraction or 0}"))
    assert timespan.parse(text) == (-span if negative else span)


@given(st.text(max_size=20))
def test_any_text_is_a_span_or_a_timespan_error(text: str) -> None:
    """Whatever the text, the reader answers a span or a TimeSpanError, never another exception."""
    try:
        assert isinstance(timespan.parse(text), timedelta)
    except timespan.TimeSpanError:
        pass
