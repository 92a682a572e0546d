"""Builders for tests: Event Hub batches as the Functions worker hands them to a function."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func

from devstack.events import HubEvent, trigger_events
from devstack.functions import indexed


@dataclass(frozen=True)
class Sent:
    """An event as a producer sent it: body, application properties, and where it landed."""

    body: bytes
    properties: Mapping[str, Any]
    sequence: int
    enqueued: datetime


def trigger_batch(partition: str, sent: Sequence[Sent]) -> list[func.EventHubEvent]:
    """The list of EventHubEvent the worker builds for a cardinality-many trigger, metadata included."""
    return trigger_events(partition, [HubEvent(e.body, e.properties, e.sequence, e.enqueued) for e in sent])


def signal(project: str, name: str, index: int, **fields: Any) -> tuple[bytes, dict[str, Any]]:
    """A signal body and its application properties."""
    body = {"name": name, "index": index, "project": project, **fields}
    return json.dumps(body, separators=(",", ":")).encode(), {"projectId": project}


class Producer:
    """Puts events on a pretend partition: sequence numbers and enqueued times like the service's."""

    def __init__(self, start: datetime, first_sequence: int = 0) -> None:
        self.next_sequence = first_sequence
        self.clock = start

    def send(
        self, body: bytes, properties: Mapping[str, Any], *, after: timedelta = timedelta(milliseconds=10)
    ) -> Sent:
        self.clock += after
        event = Sent(body, properties, self.next_sequence, self.clock)
        self.next_sequence += 1
        return event


def registered_functions() -> dict[str, Any]:
    """The functions as function_app.py registers them (indexed once per process, as the worker does)."""
    return indexed()


def registered(name: str) -> Any:
    """A registered function's user function: what the host calls."""
    return indexed()[name].get_user_function()
