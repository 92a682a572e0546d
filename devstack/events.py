"""Event Hub batches as the Functions worker hands them to a cardinality-many trigger.

The host sends the worker the bodies (`collection_bytes`) and one metadata dict for the batch:
`PropertiesArray` (each event's application properties), `SystemPropertiesArray` (enqueued time,
sequence number, offset, partition key), and `PartitionContext` (hub, consumer group, namespace and
partition id). The worker's own converter (`EventHubTriggerConverter`) turns that into the
`list[azure.functions.EventHubEvent]` the function receives; so do we, from events of either source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter


@dataclass(frozen=True)
class HubEvent:
    """One event as the hub holds it: body, application properties, and where it sits."""

    body: bytes
    properties: Mapping[str, Any]
    sequence: int
    enqueued: datetime
    offset: str = ""
    partition_key: str | None = None


@dataclass(frozen=True)
class HubContext:
    """Where a batch comes from: the `PartitionContext` of the trigger's metadata."""

    hub: str = "signals"
    consumer_group: str = "$Default"
    namespace: str = "localhost"


@dataclass
class _Bodies:
    # What the worker's `collection_bytes` datum carries: an object with a `bytes` list.
    bytes: list[bytes] = field(default_factory=list)


def trigger_events(
    partition: str, events: Sequence[HubEvent], context: HubContext = HubContext()
) -> list[func.EventHubEvent]:
    """The function's argument for a batch of one partition's events, metadata included."""
    system = [
        {
            "EnqueuedTimeUtc": _iso(event.enqueued),
            "SequenceNumber": event.sequence,
            "Offset": event.offset or str(event.sequence),
            "PartitionKey": event.partition_key,
        }
        for event in events
    ]
    metadata = {
        "SystemPropertiesArray": meta.Datum(json.dumps(system), "json"),
        "PropertiesArray": meta.Datum(json.dumps([dict(e.properties) for e in events], default=str), "json"),
        "PartitionContext": meta.Datum(
            json.dumps(
                {
                    "EventHubName": context.hub,
                    "ConsumerGroup": context.consumer_group,
                    "FullyQualifiedNamespace": context.namespace,
                    "PartitionId": partition,
                }
            ),
            "json",
        ),
    }
    data = meta.Datum(_Bodies([e.body for e in events]), "collection_bytes")
    decoded = EventHubTriggerConverter.decode(data, trigger_metadata=metadata)
    assert isinstance(decoded, list)
    return decoded


def from_event_data(event: Any) -> HubEvent:
    """An `azure.eventhub.EventData` received from a real hub, as a HubEvent."""
    key = event.partition_key
    enqueued = event.enqueued_time or datetime.now(UTC)
    return HubEvent(
        body=body_bytes(event.body),
        properties=_text_properties(event.properties or {}),
        sequence=int(event.sequence_number),
        enqueued=enqueued,
        offset=str(event.offset or ""),
        partition_key=key.decode() if isinstance(key, bytes) else key,
    )


def body_bytes(body: Any) -> bytes:
    """An AMQP data body (bytes, or an iterable of byte sections) as bytes."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, Iterable):
        return b"".join(bytes(section) for section in body)
    return json.dumps(body).encode()


def _text_properties(properties: Mapping[Any, Any]) -> dict[str, Any]:
    """Application properties with text keys (and text instead of bytes values), as the host sends."""
    result: dict[str, Any] = {}
    for key, value in properties.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        result[name] = value.decode(errors="replace") if isinstance(value, bytes) else value
    return result


def _iso(moment: datetime) -> str:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")
