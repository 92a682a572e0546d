"""Event Hub batches as the Functions worker hands them to a cardinality-many trigger.

The host sends the worker the bodies (`collection_bytes`) and one binding-data dict for the batch,
built by the Event Hubs extension's EventHubTriggerBindingStrategy (5.x):

- `PartitionContext`: the TriggerPartitionContext (namespace, hub, consumer group, partition id,
  and whether the checkpoint follows this invocation);
- `SystemPropertiesArray`: per event, its AMQP annotations (`x-opt-sequence-number`, `x-opt-offset`,
  `x-opt-enqueued-time`, `x-opt-partition-key`) plus `SequenceNumber`, `Offset` (a number in 5.x),
  `PartitionKey` and `EnqueuedTimeUtc`;
- `PropertiesArray`: per event, its application properties;
- `PartitionKeyArray`, `OffsetArray`, `SequenceNumberArray`, `EnqueuedTimeUtcArray`.

`EnqueuedTimeUtc` is `EventData.EnqueuedTime.DateTime`, a .NET DateTime of unspecified kind, which the
host serializes without an offset: the worker then builds a naive datetime that is UTC. The worker's
own converter (`EventHubTriggerConverter`) turns all that into the `list[azure.functions.EventHubEvent]`
the function receives; so do we, from events of either source (docs/conformance.md, "Event Hubs trigger").
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
    system = [_system_properties(event) for event in events]
    metadata = {
        "SystemPropertiesArray": _json(system),
        "PropertiesArray": _json([dict(e.properties) for e in events]),
        "PartitionKeyArray": _json([e.partition_key for e in events]),
        "OffsetArray": _json([str(_offset(e)) for e in events]),
        "SequenceNumberArray": _json([e.sequence for e in events]),
        "EnqueuedTimeUtcArray": _json([_unspecified_kind(e.enqueued) for e in events]),
        "PartitionContext": _json(
            {
                "FullyQualifiedNamespace": context.namespace,
                "EventHubName": context.hub,
                "ConsumerGroup": context.consumer_group,
                "PartitionId": partition,
                "IsCheckpointingAfterInvocation": True,  # batchCheckpointFrequency 1
            }
        ),
    }
    data = meta.Datum(_Bodies([e.body for e in events]), "collection_bytes")
    decoded = EventHubTriggerConverter.decode(data, trigger_metadata=metadata)
    assert isinstance(decoded, list)
    return decoded


def _system_properties(event: HubEvent) -> dict[str, Any]:
    """EventHubTriggerBindingStrategy.GetSystemPropertiesForBinding: the AMQP annotations, then the
    four properties the binding data always carries."""
    annotations: dict[str, Any] = {
        "x-opt-sequence-number": event.sequence,
        "x-opt-offset": str(_offset(event)),
        "x-opt-enqueued-time": _iso(event.enqueued),
    }
    if event.partition_key is not None:
        annotations["x-opt-partition-key"] = event.partition_key
    return {
        **annotations,
        "SequenceNumber": event.sequence,
        "Offset": _offset(event),
        "PartitionKey": event.partition_key,
        "EnqueuedTimeUtc": _unspecified_kind(event.enqueued),
    }


def _offset(event: HubEvent) -> int | str:
    """EventData.Offset is a long in Azure.Messaging.EventHubs 5.x (the local hub numbers offsets)."""
    text = event.offset or str(event.sequence)
    return int(text) if text.isdigit() else text


def _unspecified_kind(moment: datetime) -> str:
    """A UTC time as Json.NET writes a DateTime of unspecified kind: no offset, at most 7 fraction
    digits without trailing zeros."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    text = utc.replace(tzinfo=None).isoformat()
    return text.rstrip("0").rstrip(".") if "." in text else text


def _json(value: Any) -> meta.Datum:
    return meta.Datum(json.dumps(value, default=str), "json")


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
