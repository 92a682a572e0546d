"""The local host's sources: NDJSON and generated signals cut into per-partition batches, and both
sources' events handed to the function exactly as the Functions worker builds them."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from azure.eventhub import EventData

from devstack.events import HubContext, HubEvent, from_event_data, trigger_events
from devstack.functions import RetryPolicy, registered_functions
from devstack.sources import BatchPolicy, EventHubSource, LocalHub, generated, invoke_with_retry, read_ndjson
from shared.eventhub import batch_from_trigger

NDJSON = (
    b"""{"name":"click","projectId":"p1","n":0}
{"name":"view","n":1}

{"name":"click","projectId":"p2","n":2}
not json
"""
    + b"\n".join(b'{"name":"bulk","n":%d}' % n for n in range(5, 40))
    + b"\n"
)


def drain(hub: LocalHub, policy: BatchPolicy) -> dict[str, list[list[HubEvent]]]:
    """Every batch the hub cuts, per partition, checkpointing each as the pump does."""
    stop = threading.Event()
    stop.set()  # never wait: only take what is due
    batches: dict[str, list[list[HubEvent]]] = {pid: [] for pid in hub.partition_ids}
    for pid in hub.partition_ids:
        while True:
            stop.clear()
            timer = threading.Timer(0.05, stop.set)
            timer.start()
            batch = hub.next_batch(pid, policy, stop)
            timer.cancel()
            if not batch:
                break
            hub.checkpoint(pid, batch)
            batches[pid].append(batch)
    return batches


def test_ndjson_is_cut_into_per_partition_batches_with_increasing_sequence_numbers(tmp_path: Path) -> None:
    """Lines go round robin over the partitions; each partition numbers its events 0, 1, 2...; batches
    hold at most max_batch_size events, in order, and every line is delivered once."""
    hub = LocalHub(3, state_file=tmp_path / "hub.json")
    placed = hub.send(read_ndjson(io.BytesIO(NDJSON), project="fallback"))
    assert len(placed) == 39  # blank line skipped; the line that is not JSON is sent all the same
    batches = drain(hub, BatchPolicy(max_batch_size=4, min_batch_size=1, max_wait=0))
    delivered = []
    for pid, cut in batches.items():
        sequences = [event.sequence for batch in cut for event in batch]
        assert sequences == list(range(len(sequences))), pid
        assert all(1 <= len(batch) <= 4 for batch in cut)
        assert all(b[-1].sequence < c[0].sequence for b, c in itertools.pairwise(cut))
        times = [event.enqueued for batch in cut for event in batch]
        assert times == sorted(times)
        delivered += [event.body for batch in cut for event in batch]
    assert sorted(delivered) == sorted(body for body, _ in read_ndjson(io.BytesIO(NDJSON)))
    assert {len(cut) for cut in batches.values()} == {4}  # 13 events per partition: 4 batches
    assert hub.pending() == 0 and hub.wait_idle(0.1)


def test_a_lines_project_is_its_projectId_field_else_the_default() -> None:
    """projectId on the line wins; lines without one get --project; the body is sent verbatim."""
    messages = list(read_ndjson(io.BytesIO(NDJSON), project="fallback"))
    assert messages[0] == (b'{"name":"click","projectId":"p1","n":0}', {"projectId": "p1"})
    assert messages[1] == (b'{"name":"view","n":1}', {"projectId": "fallback"})
    assert messages[2][1] == {"projectId": "p2"}
    assert messages[3] == (b"not json", {"projectId": "fallback"})
    assert next(read_ndjson([b'{"name":"x"}\n']))[1] == {}  # no project at all: dead-lettered later


def test_sequence_numbers_go_on_across_runs_and_partition_keys_pick_one_partition(tmp_path: Path) -> None:
    """A new hub on the same state file carries on numbering (the ledger needs it); a partition key
    always lands on the same partition."""
    state = tmp_path / "hub.json"
    first = LocalHub(2, state_file=state)
    first.send([(b"{}", {})] * 5)
    second = LocalHub(2, state_file=state)
    placed = second.send([(b"{}", {})] * 2)
    assert sorted(event.sequence for _, event in placed) == [2, 3]
    keyed = second.send([(b"{}", {})] * 6, partition_key="tenant-a")
    assert len({pid for pid, _ in keyed}) == 1


def test_a_partition_waits_for_min_batch_size_or_max_wait() -> None:
    """Fewer than min_batch_size events wait until the oldest has waited max_wait; then they go."""
    clock = [datetime(2024, 5, 1, tzinfo=UTC)]
    hub = LocalHub(1, clock=lambda: clock[0])
    hub.send([(b"{}", {})] * 3)
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    assert hub.next_batch("0", BatchPolicy(512, 64, 5.0), stop) == []  # 3 < 64 and no time passed
    clock[0] = clock[0].replace(second=6)
    assert len(hub.next_batch("0", BatchPolicy(512, 64, 5.0), threading.Event())) == 3


def test_local_batches_reach_the_function_as_the_worker_builds_them() -> None:
    """The function's own reader (shared.eventhub) sees the partition, sequence numbers, enqueued
    times and projects the hub gave."""
    hub = LocalHub(2)
    placed = hub.send(generated(["p1", "p2"], count=10, run="t"))
    partition = placed[0][0]
    events = [event for pid, event in placed if pid == partition]
    batch = batch_from_trigger(trigger_events(partition, events, HubContext("signals")))
    assert batch.partition == partition
    assert [e.sequence for e in batch.events] == [e.sequence for e in events]
    assert [e.enqueued for e in batch.events] == [e.enqueued for e in events]
    assert [e.project_id for e in batch.events] == [json.loads(e.body)["projectId"] for e in events]
    assert [e.body for e in batch.events] == [e.body for e in events]


def test_received_event_hub_events_convert_like_the_worker_does() -> None:
    """An EventData as the consumer receives it: annotations become SystemPropertiesArray, application
    properties PropertiesArray (text keys), the partition PartitionContext."""
    data = EventData(b'{"name":"click"}')
    data.properties = {b"projectId": b"p9"}
    data._raw_amqp_message.annotations = {
        b"x-opt-sequence-number": 41,
        b"x-opt-offset": b"8800",
        b"x-opt-enqueued-time": 1714557600123,
        b"x-opt-partition-key": b"tenant",
    }
    event = from_event_data(data)
    assert (event.sequence, event.offset, event.partition_key) == (41, "8800", "tenant")
    assert event.properties == {"projectId": "p9"}
    [received] = trigger_events("7", [event], HubContext("signals", "$Default", "ns.servicebus.windows.net"))
    assert received.metadata["PartitionContext"]["PartitionId"] == "7"
    batch = batch_from_trigger([received])
    assert batch.events[0].project_id == "p9"
    assert batch.events[0].enqueued == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)


def test_failed_invocations_retry_with_the_functions_own_policy() -> None:
    """export_signals' @app.retry (exponential, 2 s to 5 min, without end) is read from the app and
    applied: the batch is only checkpointed once the function returned."""
    policy = registered_functions()["export_signals"].retry
    assert policy == RetryPolicy("exponential_backoff", -1, 0.0, 2.0, 300.0)
    assert [policy.delay_before(n) for n in (1, 2, 3, 10)] == [2.0, 4.0, 8.0, 300.0]
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("the service's storage failed")

    fast = RetryPolicy("fixed_delay", -1, delay=0.0)
    assert invoke_with_retry(flaky, fast, threading.Event()) is True
    assert len(calls) == 3
    stopped = threading.Event()
    stopped.set()
    assert invoke_with_retry(flaky, fast, stopped) is False  # stopping: not checkpointed


class Partition:
    """What EventHubConsumerClient hands on_event_batch: the partition, and the checkpoint it moves."""

    def __init__(self, partition_id: str) -> None:
        self.partition_id = partition_id
        self.checkpoints: list[int] = []

    def update_checkpoint(self, event: EventData) -> None:
        self.checkpoints.append(int(event.sequence_number))


def received(sequence: int, project: str) -> EventData:
    data = EventData(json.dumps({"name": "click", "n": sequence}).encode())
    data.properties = {"projectId": project}
    data._raw_amqp_message.annotations = {
        b"x-opt-sequence-number": sequence,
        b"x-opt-offset": str(sequence * 10).encode(),
        b"x-opt-enqueued-time": 1714557600000 + sequence,
    }
    return data


def test_an_event_hub_batch_is_checkpointed_only_after_the_function_returned() -> None:
    """A received batch reaches the function with its partition and events; the checkpoint moves to
    its last event after the function returned, and not at all while it keeps failing (stopping)."""
    calls: list[list[int]] = []
    failing = [False]

    def function(events: list[object]) -> None:
        batch = batch_from_trigger(events)  # type: ignore[arg-type]
        calls.append([e.sequence for e in batch.events])
        assert batch.partition == "3" and batch.events[0].project_id == "p1"
        if failing[0]:
            raise RuntimeError("the service's storage failed")

    source = EventHubSource(
        connection="Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5",
        hub="signals",
        consumer_group="$Default",
        storage_connection="",
        handler=function,
        policy=BatchPolicy(),
        retry=RetryPolicy("fixed_delay", -1, delay=0.01),  # export_signals': retry without end
    )
    partition = Partition("3")
    source.deliver_batch(partition, [received(n, "p1") for n in (5, 6, 7)])
    assert calls == [[5, 6, 7]] and partition.checkpoints == [7] and source.delivered == 3
    source.deliver_batch(partition, [])  # max_wait_time passed with nothing: no call
    assert len(calls) == 1
    failing[0] = True
    worker = threading.Thread(target=source.deliver_batch, args=(partition, [received(8, "p1")]))
    worker.start()
    while len(calls) < 4:
        time.sleep(0.01)
    assert partition.checkpoints == [7]  # retried, never checkpointed
    source.stop()  # the host stops: not checkpointed, so the batch comes again
    worker.join(5)
    assert not worker.is_alive() and partition.checkpoints == [7]
