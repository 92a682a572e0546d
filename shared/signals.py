"""What to write: an Event Hub event body turned into a signal line, or a reason to reject it.

Pure. The body is validated as one JSON object and only its top-level `name` is read (pysimdjson), so a
signal is never rebuilt: the exported line is the body's own bytes. simdjson refuses some valid JSON
(numbers beyond 64-bit integers or doubles, lone surrogate escapes): every body it refuses is judged
again by `shared.jsontext`, which reads JSON exactly as RFC 8259 defines it. No body makes the reader
raise (see `SignalReader.read`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import simdjson

from shared import jsontext
from shared.delivery import Line

MAX_SIGNAL_BYTES = 1024 * 1024
MAX_DEPTH = jsontext.MAX_DEPTH
PROJECT_PROPERTY = "projectId"
_OBJECT = simdjson.Object
_BOM = b"\xef\xbb\xbf"  # RFC 8259 8.1: a parser may ignore it; the exported line does not carry it


class RejectReason(StrEnum):
    """Why an event is not a signal. The value is what the dead-letter record says."""

    TOO_LARGE = "too-large"
    NOT_UTF8 = "not-utf8"
    NOT_JSON = "not-json"
    TOO_DEEP = "too-deep"
    NOT_OBJECT = "not-object"
    MISSING_PROJECT = "missing-project"
    MISSING_NAME = "missing-name"
    INVALID_NAME = "invalid-name"
    SERVICE_FAULT = "service-fault"  # not the event's fault: the service failed on its batch, repeatedly


@dataclass(slots=True)
class IncomingEvent:
    """One Event Hub event as the trigger delivers it, reduced to what the export needs.

    A plain slotted dataclass, not a frozen one (which costs twice as much to build): one is made per
    event. Treat it as immutable."""

    body: bytes
    sequence: int
    enqueued: datetime
    project_id: str | None


Signal = tuple[str, bytes]
"""What the reader makes of a valid event: the signal's name and its line (the body on one line).

A plain tuple, the cheapest object Python builds: the export path makes one per event, and takes the
project, sequence number and time from the event itself."""


Group = tuple[str, str, int]
"""Signals of one project and name enqueued in one UTC minute (POSIX minutes): all that decides which
files a signal goes to, since the shortest time bucket of any layout is a minute."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event that cannot be exported, kept whole for the dead-letter container."""

    event: IncomingEvent
    reason: RejectReason
    detail: str


class SignalReader:
    """Validates bodies. Holds one simdjson parser, so one reader per thread."""

    def __init__(self) -> None:
        self._parse = simdjson.Parser().parse

    def group(self, events: Sequence[IncomingEvent]) -> tuple[dict[Group, list[Line]], list[Rejection]]:
        """Read a batch: each signal's line in its group (in batch order), and the rejected events.

        The export's hot path (measured by `python -m bench`): per signal, one parse, two comparisons
        of its time, one dict lookup and one append. A body that is not plainly a signal on one line is
        left to `read`, which gives the verdict on every unusual event.
        """
        parse = self._parse
        groups: dict[Group, list[Line]] = {}
        rejections: list[Rejection] = []
        minute, minute_start, minute_end = -1, _NEVER, _NEVER
        for event in events:
            body = event.body
            name: object = None
            if len(body) <= MAX_SIGNAL_BYTES and event.project_id and 10 not in body and 13 not in body:
                try:
                    document = parse(body)
                except (ValueError, RuntimeError):  # refused: `read` gives the verdict
                    pass
                else:
                    if isinstance(document, _OBJECT):
                        name = document.get("name")
                    del document  # simdjson refuses to parse again while a document is alive
            # A body simdjson read starts with "{", whitespace, or 0xEF: a byte order mark (rare).
            if not isinstance(name, str) or not name or body[0] == 0xEF:
                verdict = self.read(event)
                if isinstance(verdict, Rejection):
                    rejections.append(verdict)
                    continue
                name, body = verdict
            enqueued = event.enqueued
            if not minute_start <= enqueued < minute_end:  # a batch's signals mostly share a minute
                minute, minute_start, minute_end = _minute_of(enqueued)
            key: Group = (event.project_id, name, minute)  # type: ignore[assignment]  # checked above
            lines = groups.get(key)
            if lines is None:
                lines = groups[key] = []
            lines.append((event.sequence, body))
        return groups, rejections

    def read(self, event: IncomingEvent) -> Signal | Rejection:
        """One event: its signal, or why it is not one. Never raises for any body.

        simdjson's `parse` raises ValueError (UnicodeDecodeError included) or RuntimeError (integers
        beyond 64 bits, nesting beyond its depth) for a body it refuses; `jsontext` then judges the
        body, raising only its own NotJson and TooDeep, and Python's UTF-8 decoder raises only
        UnicodeDecodeError. Only MemoryError passes: the process is out of memory, which no body of
        at most 1 MiB causes by itself.
        """
        body = event.body
        if len(body) > MAX_SIGNAL_BYTES:
            return Rejection(event, RejectReason.TOO_LARGE, f"{len(body)} bytes, over {MAX_SIGNAL_BYTES}")
        if not event.project_id:
            return Rejection(
                event, RejectReason.MISSING_PROJECT, f"application property {PROJECT_PROPERTY!r} is missing"
            )
        try:
            document = self._parse(body)
        except (ValueError, RuntimeError):
            return _judge(event)  # simdjson also refuses valid JSON: the reference reader decides
        try:
            if not isinstance(document, _OBJECT):
                return Rejection(event, RejectReason.NOT_OBJECT, "body is JSON but not an object")
            name = document.get("name")
        finally:
            # simdjson refuses to reuse a parser while a document from it is alive.
            del document
        if not isinstance(name, str) or not name:
            return Rejection(event, RejectReason.MISSING_NAME, _NO_NAME)
        return name, line_of(body)


_NO_NAME = "body has no top-level string field 'name', or it is empty"


def _judge(event: IncomingEvent) -> Signal | Rejection:
    """The verdict on a body simdjson refused, from a reader of RFC 8259 JSON (`shared.jsontext`)."""
    try:
        text = event.body.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(event, RejectReason.NOT_UTF8, "body is not valid UTF-8")
    try:
        top = jsontext.read_top(text.removeprefix("\ufeff"), "name")
    except jsontext.TooDeep as deep:
        return Rejection(event, RejectReason.TOO_DEEP, f"body is too deep: {deep}")
    except jsontext.NotJson as error:
        return Rejection(event, RejectReason.NOT_JSON, f"body is not JSON: {error}")
    if not top.is_object:
        return Rejection(event, RejectReason.NOT_OBJECT, "body is JSON but not an object")
    name = top.member
    if not name:
        return Rejection(event, RejectReason.MISSING_NAME, _NO_NAME)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape: valid JSON, yet no text a name can be
        return Rejection(
            event,
            RejectReason.INVALID_NAME,
            "the field 'name' holds a lone surrogate escape (\\ud800-\\udfff)",
        )
    return name, line_of(event.body)


def line_of(body: bytes) -> bytes:
    """The exported line of a valid body: the body itself, without a leading byte order mark and on
    one line (`one_line`)."""
    if body[:3] == _BOM:
        body = body[3:]
    if 10 in body or 13 in body:  # a line break (rare): see one_line
        body = one_line(body)
    return body


def one_line(body: bytes) -> bytes:
    """The body on one line with the same JSON value: the body itself unless it has line breaks.

    JSON strings cannot hold a raw CR or LF, so every CR or LF in a valid body is whitespace between
    tokens, and no two JSON tokens need whitespace to stay apart: dropping them keeps the value.
    """
    # `10 in body` is one memchr; `b"\n" in body` runs a substring search, several times slower.
    if 10 in body or 13 in body:
        return body.replace(b"\r", b"").replace(b"\n", b"")
    return body


def _minute_of(enqueued: datetime) -> tuple[int, datetime, datetime]:
    """The UTC minute of a time: its number (POSIX minutes), start and end."""
    minute = int(enqueued.timestamp()) // 60
    start = datetime.fromtimestamp(minute * 60, UTC)
    return minute, start, start + timedelta(minutes=1)


_NEVER = datetime.min.replace(tzinfo=UTC)  # an empty minute: the first signal computes its own
