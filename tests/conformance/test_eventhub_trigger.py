"""Event Hubs trigger rows: the batch's binding data, checkpoints, @app.retry and batch sizing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import azure.functions as func

from devstack.events import HubContext, HubEvent, trigger_events
from devstack.functions import registered_functions
from devstack.host import HOST_JSON, host_json
from devstack.sources import BatchPolicy, LocalHub, LocalPump
from shared.eventhub import batch_from_trigger
from tests.conformance import sources

ENQUEUED = datetime(2026, 3, 7, 9, 41, 5, 123400, tzinfo=UTC)


def batch(partition: str = "3") -> list[func.EventHubEvent]:
    events = [
        HubEvent(b'{"name":"click"}', {"projectId": "p1"}, 41, ENQUEUED, "8800", "tenant"),
        HubEvent(b'{"name":"view"}', {"projectId": "p2"}, 42, ENQUEUED, "8900"),
    ]
    return trigger_events(partition, events, HubContext("signals", "$Default", "ns.servicebus.windows.net"))


def test_a_batch_carries_the_binding_data_of_the_extension_and_the_service_reads_it() -> None:
    """A cardinality-many function gets one binding-data dict per batch with the keys of
    EventHubTriggerBindingStrategy; the service takes the partition from PartitionContext, each
    project from PropertiesArray, and the enqueued time (sent without offset) as UTC."""
    events = batch()
    metadata = events[0].metadata
    assert set(metadata) >= sources.EVENTHUB_BATCH_METADATA
    assert set(metadata["PartitionContext"]) == sources.EVENTHUB_PARTITION_CONTEXT
    assert all(set(p) >= sources.EVENTHUB_SYSTEM_PROPERTIES for p in metadata["SystemPropertiesArray"])
    assert all(event.metadata == metadata for event in events)  # one dict for the whole batch
    assert events[0].enqueued_time == ENQUEUED.replace(tzinfo=None)  # DateTime of unspecified kind
    assert (events[0].sequence_number, events[0].offset, events[0].partition_key) == (41, 8800, "tenant")
    read = batch_from_trigger(events)
    assert read.partition == "3"
    assert [(e.project_id, e.sequence, e.enqueued) for e in read.events] == [
        ("p1", 41, ENQUEUED),
        ("p2", 42, ENQUEUED),
    ]


def test_the_checkpoint_moves_on_after_an_invocation_that_raised() -> None:
    """The extension checkpoints a batch whether or not the function succeeded
    (EventHubListener.PartitionProcessor): without a retry policy, a failed batch is not delivered
    again, so export_signals keeps every customer failure inside (backlog) and raises only when the
    service's own storage fails, with a retry policy that never gives up."""
    hub = LocalHub(1)
    calls: list[list[int]] = []

    def failing(events: list[func.EventHubEvent]) -> None:
        calls.append([int(e.sequence_number or 0) for e in events])
        raise RuntimeError("failed")

    pump = LocalPump(
        hub,
        failing,
        policy=BatchPolicy(max_batch_size=10, min_batch_size=1, max_wait=0.05),
        retry=None,
        context=HubContext(),
    )
    hub.send([(b'{"name":"a"}', {"projectId": "p"}), (b'{"name":"b"}', {"projectId": "p"})])
    pump.start()
    try:
        assert hub.wait_idle(30)
    finally:
        pump.stop()
    assert calls == [[0, 1]] and hub.status()["partitions"]["0"]["delivered"] == 2
    policy = registered_functions()["export_signals"].retry
    assert policy is not None and policy.max_retry_count == -1


def test_retry_policies_are_on_the_event_hub_function_only_and_follow_the_host_s_first_steps() -> None:
    """@app.retry is honoured for Event Hubs and timer triggers; the queue trigger retries through the
    queue instead. export_signals' exponential backoff starts at its minimum and is capped at its
    maximum (RandomizedExponentialBackoffStrategy); the retry count lives in memory."""
    functions = registered_functions()
    assert functions["check_health"].retry is None and functions["replay_backlog"].retry is None
    policy = functions["export_signals"].retry
    assert policy is not None and policy.strategy == "exponential_backoff"
    assert policy.delay_before(1) == policy.minimum_interval
    assert policy.delay_before(1000) == policy.maximum_interval
    assert 0 < sources.RETRY_RANDOMIZATION < 1


def test_host_json_batches_are_within_the_extension_s_rules_and_devstack_reads_them() -> None:
    """minEventBatchSize below maxEventBatchSize, maxWaitTime at most 10 minutes, checkpoint after every
    batch; the local hub cuts batches with these values and never more than the maximum."""
    hubs = host_json()["extensions"]["eventHubs"]
    policy = BatchPolicy.from_host_json(HOST_JSON)
    assert (policy.max_batch_size, policy.min_batch_size) == (
        hubs["maxEventBatchSize"],
        hubs["minEventBatchSize"],
    )
    assert 1 < policy.min_batch_size < policy.max_batch_size <= policy.prefetch
    assert 0 < policy.max_wait <= 600 and hubs["batchCheckpointFrequency"] == 1
    hub = LocalHub(1)
    hub.send([(json.dumps({"name": "n", "i": i}).encode(), {"projectId": "p"}) for i in range(25)])
    stop = threading.Event()
    small = BatchPolicy(max_batch_size=10, min_batch_size=5, max_wait=60)
    assert len(hub.next_batch("0", small, stop)) == 10
