"""The signal contract: what is a signal, what is rejected and why, and the exported line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.signals import (
    MAX_SIGNAL_BYTES,
    IncomingEvent,
    Rejection,
    RejectReason,
    Signal,
    SignalReader,
    one_line,
)

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def read(body: bytes, project: str | None = "p1") -> Signal | Rejection:
    return SignalReader().read(IncomingEvent(body, 7, AT, project))


def test_a_json_object_with_a_name_is_a_signal_exported_byte_for_byte() -> None:
    """A valid body is read as its name and its own bytes, not a copy."""
    body = b'{"name":"click","value":1.50,"nested":{"a":[1,2]}}'
    result = read(body)
    assert result == ("click", body)
    assert isinstance(result, tuple) and result[1] is body


def test_a_body_on_several_lines_is_compacted_to_one_with_the_same_value() -> None:
    """Pretty-printed JSON becomes one line whose JSON value is unchanged."""
    document = {"name": "view", "text": "a \\n b\tc", "list": [1, {"x": None}], "flag": True}
    body = json.dumps(document, indent=2).encode()
    result = read(body.replace(b"\n", b"\r\n"))
    assert not isinstance(result, Rejection)
    _, line = result
    assert b"\n" not in line and b"\r" not in line
    assert json.loads(line) == document


@pytest.mark.parametrize(
    ("body", "project", "reason"),
    [
        (b'{"name":"a\xff"}', "p1", RejectReason.NOT_UTF8),
        (b'{"name": "x"', "p1", RejectReason.NOT_JSON),
        (b"", "p1", RejectReason.NOT_JSON),
        (b'{"name":"a"} {"name":"b"}', "p1", RejectReason.NOT_JSON),
        (b'["name"]', "p1", RejectReason.NOT_OBJECT),
        (b'"click"', "p1", RejectReason.NOT_OBJECT),
        (b'{"value":1}', "p1", RejectReason.MISSING_NAME),
        (b'{"name":5}', "p1", RejectReason.MISSING_NAME),
        (b'{"name":""}', "p1", RejectReason.MISSING_NAME),
        (b'{"name":"click"}', None, RejectReason.MISSING_PROJECT),
        (b'{"name":"click"}', "", RejectReason.MISSING_PROJECT),
        (b'{"name":"x","pad":"' + b"a" * MAX_SIGNAL_BYTES + b'"}', "p1", RejectReason.TOO_LARGE),
    ],
)
def test_bodies_that_are_not_signals_are_rejected_with_a_reason(
    body: bytes, project: str | None, reason: RejectReason
) -> None:
    """Each kind of bad input is rejected with its own reason, keeping the event whole."""
    result = read(body, project)
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert result.event.body == body


def test_a_signal_of_exactly_one_mebibyte_is_accepted() -> None:
    """The size limit is inclusive: 1 MiB is a signal, 1 MiB + 1 byte is not."""
    head, tail = b'{"name":"big","pad":"', b'"}'
    body = head + b"a" * (MAX_SIGNAL_BYTES - len(head) - len(tail)) + tail
    assert len(body) == MAX_SIGNAL_BYTES
    assert read(body) == ("big", body)


def test_one_reader_reads_many_bodies_in_a_row() -> None:
    """The reader's parser is reused across bodies, valid or not."""
    reader = SignalReader()
    results = [
        reader.read(IncomingEvent(b, i, AT, "p"))
        for i, b in enumerate([b'{"name":"a"}', b"{", b'{"name":"b"}'])
    ]
    assert results[0] == ("a", b'{"name":"a"}') and results[2] == ("b", b'{"name":"b"}')
    assert isinstance(results[1], Rejection) and results[1].reason is RejectReason.NOT_JSON


def test_one_line_keeps_single_line_bodies_untouched() -> None:
    """A body already on one line is exported exactly as sent: not copied, not even trimmed."""
    body = b' {"name":"a","s":"x y"}\t'
    assert one_line(body) is body
