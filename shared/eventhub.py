"""The Event Hub trigger's events, as the pipeline reads them.

The trigger (cardinality many) hands a list of `azure.functions.EventHubEvent` that share one metadata
dict: the partition is in `PartitionContext.PartitionId` and each event's application properties are
at its index in `PropertiesArray`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import azure.functions as func

from shared.pipeline import EventBatch
from shared.signals import PROJECT_PROPERTY, IncomingEvent


class MalformedBatch(ValueError):
    """The trigger delivered events without the metadata every batch has."""


def batch_from_trigger(events: Sequence[func.EventHubEvent]) -> EventBatch:
    """The batch of a trigger invocation: partition, and per event body, sequence, time and project."""
    if not events:
        return EventBatch("", [])
    metadata: Mapping[str, Any] = events[0].metadata or {}
    partition = _partition(metadata)
    properties = metadata.get("PropertiesArray") or []
    incoming = []
    for index, event in enumerate(events):
        if event.sequence_number is None:
            raise MalformedBatch("an event has no sequence number")
        props = properties[index] if index < len(properties) and isinstance(properties[index], dict) else {}
        project = props.get(PROJECT_PROPERTY)
        incoming.append(
            IncomingEvent(
                body=event.get_body(),
                sequence=int(event.sequence_number),
                enqueued=_utc(event.enqueued_time),
                project_id=project if isinstance(project, str) else None,
            )
        )
    if any(later.sequence <= earlier.sequence for earlier, later in pairwise(incoming)):
        incoming.sort(key=lambda e: e.sequence)  # never seen from Event Hubs; delivery relies on it
    return EventBatch(partition, incoming)


def _partition(metadata: Mapping[str, Any]) -> str:
    context = metadata.get("PartitionContext")
    if isinstance(context, dict):
        partition = context.get("PartitionId")
        if partition is not None:
            return str(partition)
    raise MalformedBatch("the batch has no PartitionContext.PartitionId")


def _utc(value: datetime | None) -> datetime:
    if value is None:
        raise MalformedBatch("an event has no enqueued time")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
