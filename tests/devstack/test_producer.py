"""The producer's Event Hub side: batches filled to the hub's size limit, a full batch sent and a new
one started, projectId an application property of each event."""

from __future__ import annotations

from typing import Any

import pytest
from azure.eventhub import EventData

from devstack.errors import DevstackError
from devstack.producer import EventHubTarget
from devstack.sources import generated

CONNECTION = (
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=signals"
)


class Batch:
    """Like EventDataBatch: add() raises ValueError once the batch would exceed its size."""

    def __init__(self, max_size_in_bytes: int) -> None:
        self.max_size_in_bytes = max_size_in_bytes
        self.events: list[EventData] = []

    def add(self, event: EventData) -> None:
        size = sum(len(e.body_as_str()) for e in [*self.events, event])
        if size > self.max_size_in_bytes:
            raise ValueError("EventDataBatch has reached its size limit")
        self.events.append(event)

    def __len__(self) -> int:
        return len(self.events)


class Client:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: list[list[EventData]] = []

    def create_batch(self) -> Batch:
        return Batch(self.limit)

    def send_batch(self, batch: Any) -> None:
        self.sent.append(batch.events)

    def close(self) -> None:
        pass


def test_batches_are_filled_to_the_hubs_limit_with_the_project_as_a_property() -> None:
    """Every signal is sent once, in order, in batches that each stayed within the limit."""
    client = Client(limit=1000)
    target = EventHubTarget(CONNECTION, client=client)
    messages = list(generated(["p1", "p2"], count=50, run="r"))
    progress: list[int] = []
    assert target.send(iter(messages), progress=progress.append) == 50
    assert len(client.sent) > 1 and sum(progress) == 50
    assert all(sum(len(e.body_as_str()) for e in batch) <= 1000 for batch in client.sent)
    flat = [event for batch in client.sent for event in batch]
    assert [e.body_as_str().encode() for e in flat] == [body for body, _ in messages]
    assert [e.properties for e in flat] == [{"projectId": props["projectId"]} for _, props in messages]
    assert target.hub == "signals"


def test_a_signal_larger_than_a_batch_is_refused_clearly() -> None:
    """A body the hub can never take stops the producer with its size, not a traceback."""
    target = EventHubTarget(CONNECTION, client=Client(limit=10))
    with pytest.raises(DevstackError, match="larger than an Event Hub batch"):
        target.send(iter([(b'{"name":"far too long for the batch"}', {"projectId": "p"})]))
