"""What to write: an Event Hub event body turned into a signal line, or a reason to reject it.

Pure. The body is validated as one JSON object and only its top-level `name` is read (pysimdjson), so a
signal is never rebuilt: the exported line is the body's own bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import simdjson

MAX_SIGNAL_BYTES = 1024 * 1024
PROJECT_PROPERTY = "projectId"


class RejectReason(StrEnum):
    """Why an event is not a signal. The value is what the dead-letter record says."""

    TOO_LARGE = "too-large"
    NOT_UTF8 = "not-utf8"
    NOT_JSON = "not-json"
    NOT_OBJECT = "not-object"
    MISSING_PROJECT = "missing-project"
    MISSING_NAME = "missing-name"


# The per-event classes are plain slotted dataclasses, not frozen ones: a frozen dataclass costs twice
# as much to build, and the export path builds one of each per event. Treat them as immutable.


@dataclass(slots=True)
class IncomingEvent:
    """One Event Hub event as the trigger delivers it, reduced to what the export needs."""

    body: bytes
    sequence: int
    enqueued: datetime
    project_id: str | None


@dataclass(slots=True)
class Signal:
    """A valid signal: its project, name, position in the partition and the line to export.

    It is itself the line that delivery writes (`sequence`, `data`): no copy per export."""

    project_id: str
    name: str
    sequence: int
    enqueued: datetime
    data: bytes  # the body on one line, without the trailing newline


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event that cannot be exported, kept whole for the dead-letter container."""

    event: IncomingEvent
    reason: RejectReason
    detail: str


class SignalReader:
    """Validates bodies. Holds one simdjson parser, so one reader per thread."""

    def __init__(self) -> None:
        self._parser = simdjson.Parser()

    def read(self, event: IncomingEvent) -> Signal | Rejection:
        body = event.body
        if len(body) > MAX_SIGNAL_BYTES:
            return Rejection(event, RejectReason.TOO_LARGE, f"{len(body)} bytes, over {MAX_SIGNAL_BYTES}")
        if not event.project_id:
            return Rejection(
                event, RejectReason.MISSING_PROJECT, f"application property {PROJECT_PROPERTY!r} is missing"
            )
        try:
            document = self._parser.parse(body)
        except UnicodeDecodeError:
            return Rejection(event, RejectReason.NOT_UTF8, "body is not valid UTF-8")
        except ValueError as error:
            return Rejection(event, RejectReason.NOT_JSON, f"body is not JSON: {_first_line(error)}")
        try:
            if not isinstance(document, simdjson.Object):
                return Rejection(event, RejectReason.NOT_OBJECT, "body is JSON but not an object")
            name = document.get("name")
            if not isinstance(name, str) or not name:
                return Rejection(
                    event, RejectReason.MISSING_NAME, "body has no top-level string field 'name'"
                )
        finally:
            # simdjson refuses to reuse a parser while a document from it is alive.
            del document
        return Signal(event.project_id, name, event.sequence, event.enqueued, one_line(body))


def one_line(body: bytes) -> bytes:
    """The body on one line with the same JSON value.

    JSON strings cannot hold a raw CR or LF, so every CR or LF in a valid body is whitespace between
    tokens, and no two JSON tokens need whitespace to stay apart: dropping them keeps the value.
    """
    if b"\n" in body or b"\r" in body:
        body = body.replace(b"\r", b"").replace(b"\n", b"")
    return body.strip(b" \t")


def _first_line(error: Exception) -> str:
    return str(error).split(".")[0]
