"""The live export path, end to end on local storage, through the function as function_app registers it."""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from shared.model import Export, Granularity
from shared.runtime import Runtime, use_runtime
from shared.settings import DEADLETTER_CONTAINER
from tests.integration.conftest import Customer, counts
from tests.support import Producer, Sent, registered, registered_functions, signal, trigger_batch

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 22, 10, 58, 30, tzinfo=UTC)


def test_the_trigger_is_bound_to_the_hub_from_settings_with_many_binary_events() -> None:
    """export_signals: Event Hub trigger, cardinality many, binary, hub and connection from app settings."""
    functions = registered_functions()
    (config,) = json.loads(functions["export_signals"].get_function_json())["bindings"]
    assert config["type"] == "eventHubTrigger"
    assert config["direction"] == "IN"
    assert config["eventHubName"] == "%EVENTHUB_NAME%"
    assert config["connection"] == "EventHubConnection"
    assert config["consumerGroup"] == "%EVENTHUB_CONSUMER_GROUP%"
    assert config["cardinality"] == "MANY" and config["dataType"] == "BINARY"
    retry = functions["export_signals"].get_setting("retry_policy").get_dict_repr()
    assert retry["strategy"] == "exponential_backoff" and retry["max_retry_count"] == "-1"


def expected_adls(
    export: Export, directory: str, sent: list[Sent], partition: str
) -> Counter[tuple[str, bytes]]:
    """Where the README says each signal of an ADLS export lands, computed without the product's code."""
    expected: Counter[tuple[str, bytes]] = Counter()
    for event in sent:
        if not is_signal(event) or event.properties.get("projectId") != export.project_id:
            continue
        if export.signals is not None and json.loads(event.body)["name"] not in export.signals:
            continue
        t = event.enqueued
        folder = f"{t:%Y/%m/%d}" if export.granularity is Granularity.DAY else f"{t:%Y/%m/%d/%H}"
        path = f"{directory}/{folder}/{export.export_id}_{partition}.jsonl"
        expected[(path, json_line(event.body))] += 1
    return expected


def expected_blob(export: Export, sent: list[Sent], partition: str) -> Counter[tuple[str, bytes]]:
    """Application Insights layout: project/signal/date/hour/a blob per minute."""
    expected: Counter[tuple[str, bytes]] = Counter()
    for event in sent:
        if not is_signal(event) or event.properties.get("projectId") != export.project_id:
            continue
        name = json.loads(event.body)["name"]
        if export.signals is not None and name not in export.signals:
            continue
        t = event.enqueued
        path = f"{export.project_id}/{name}/{t:%Y-%m-%d}/{t:%H}/{t:%Y%m%d_%H%M}_{export.export_id}_{partition}.blob"
        expected[(path, json_line(event.body))] += 1
    return expected


def is_signal(event: Sent) -> bool:
    try:
        body = json.loads(event.body)
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and isinstance(body.get("name"), str)
        and bool(event.properties.get("projectId"))
    )


def json_line(body: bytes) -> bytes:
    return body.replace(b"\n", b"").replace(b"\r", b"").strip()


BAD = [
    (b'{"name":"broken"', "not-json"),
    (b'{"name":"caf\xe9"}', "not-utf8"),
    (b'[{"name":"list"}]', "not-object"),
    (b'{"value":3}', "missing-name"),
]


def mixed_traffic(producer: Producer, alpha: str, beta: str, count: int) -> list[Sent]:
    """Two projects, several names, a multi-line body, bad bodies, across an hour boundary."""
    sent = []
    names = ["click", "view", "purchase", "error"]
    for index in range(count):
        project = alpha if index % 3 else beta
        body, props = signal(project, names[index % 4], index, payload="x" * (index % 50))
        if index == 5:
            body = json.dumps({"name": "view", "index": 5, "pretty": [1, 2]}, indent=2).encode()
        sent.append(producer.send(body, props, after=timedelta(seconds=3)))
        if index % 17 == 0:
            bad, _ = BAD[(index // 17) % len(BAD)]
            sent.append(producer.send(bad, {"projectId": alpha}, after=timedelta(seconds=1)))
    sent.append(producer.send(b'{"name":"orphan"}', {}, after=timedelta(seconds=1)))
    return sent


@pytest.fixture
def two_projects(create_export: Callable[..., Export], customer: Customer, project: str) -> dict[str, Any]:
    alpha, beta = project, project + "-b"
    fs_a, fs_b = f"fs{alpha[-8:]}a", f"fs{alpha[-8:]}b"
    container = f"ai{alpha[-8:]}"
    exports = {
        "lake": create_export(alpha, "lake", customer.adls(fs_a, "directory1/directory2/")),
        "daily": create_export(
            alpha, "daily", customer.adls(fs_a, "daily"), signals=["purchase"], granularity=Granularity.DAY
        ),
        "ai": create_export(alpha, "ai", customer.blob(container), signals=["click", "view"]),
        "beta_lake": create_export(beta, "lake", customer.adls(fs_b, "")),
    }
    return {"alpha": alpha, "beta": beta, "fs_a": fs_a, "fs_b": fs_b, "container": container, **exports}


def check_destinations(customer: Customer, setup: dict[str, Any], sent: list[Sent], partition: str) -> None:
    lake = counts(customer.lake_files(setup["fs_a"]))
    want = expected_adls(setup["lake"], "directory1/directory2", sent, partition)
    want += expected_adls(setup["daily"], "daily", sent, partition)
    assert lake == want
    assert max(lake.values()) == 1
    assert counts(customer.blobs(setup["container"])) == expected_blob(setup["ai"], sent, partition)
    beta = counts(customer.lake_files(setup["fs_b"]))
    assert beta == Counter(
        {
            (p.lstrip("/"), line): n
            for (p, line), n in expected_adls(setup["beta_lake"], "", sent, partition).items()
        }
    )


def test_a_batch_reaches_every_matching_export_once_and_bad_events_are_dead_lettered(
    service: Runtime, customer: Customer, two_projects: dict[str, Any], hub: str, azurite: Any
) -> None:
    """Two projects, names, bad bodies, an hour boundary and a redelivery: each signal once, in its file."""
    producer = Producer(START)
    sent = mixed_traffic(producer, two_projects["alpha"], two_projects["beta"], 60)
    export_signals = registered("export_signals")

    export_signals(trigger_batch("3", sent[:40]))
    export_signals(trigger_batch("3", sent[40:]))
    # The host crashed before checkpointing: everything comes again, cut differently.
    export_signals(trigger_batch("3", sent[25:55]))
    export_signals(trigger_batch("3", sent[55:]))

    check_destinations(customer, two_projects, sent, "3")
    paths = set(customer.lake_files(two_projects["fs_a"]))
    assert {p.split("/")[5] for p in paths if p.startswith("directory1")} == {"10", "11"}, "an hour boundary"

    dead = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        DEADLETTER_CONTAINER
    )
    records = [
        json.loads(dead.download_blob(b.name).readall()) for b in dead.list_blobs() if f"/{hub}-3/" in b.name
    ]
    bad_sent = [e for e in sent if not is_signal(e)]
    assert sorted(r["sequenceNumber"] for r in records) == sorted(e.sequence for e in bad_sent)
    reasons = {r["sequenceNumber"]: r["reason"] for r in records}
    for event in bad_sent:
        expected = dict(BAD).get(event.body, "missing-project")
        assert reasons[event.sequence] == expected
        record = next(r for r in records if r["sequenceNumber"] == event.sequence)
        assert record["bodyBase64"] and record["detail"]


def test_a_batch_handed_over_out_of_order_is_written_in_sequence_order_once(
    service: Runtime, customer: Customer, two_projects: dict[str, Any]
) -> None:
    """Event Hubs delivers a partition in order; should a batch come reversed, every file still gets
    its signals in sequence order, and a redelivery after it adds nothing twice."""
    sent = mixed_traffic(Producer(START), two_projects["alpha"], two_projects["beta"], 40)
    export_signals = registered("export_signals")

    export_signals(trigger_batch("4", sent[:30][::-1]))
    export_signals(trigger_batch("4", sent[20:]))

    check_destinations(customer, two_projects, sent, "4")
    for lines in customer.lake_files(two_projects["fs_a"]).values():
        indexes = [json.loads(line)["index"] for line in lines]
        assert indexes == sorted(indexes)


def test_a_crash_at_any_step_then_redelivery_exports_each_signal_once(
    service: Runtime, customer: Customer, two_projects: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupt after some destination writes, after all writes, and after the ledger: redeliver each time."""
    producer = Producer(START)
    sent = mixed_traffic(producer, two_projects["alpha"], two_projects["beta"], 45)
    batches = [sent[0:15], sent[15:32], sent[32:]]
    export_signals = registered("export_signals")
    ledger = service.ledger("0")

    class Crash(Exception):
        pass

    # 0. A first batch goes through and is recorded: later crashes meet files the ledger knows.
    export_signals(trigger_batch("0", sent[0:8]))
    # 1. The process dies after the destination writes but before the ledger is saved.
    with monkeypatch.context() as patch:

        def crash_before_record(*args: Any, **kwargs: Any) -> None:
            raise Crash

        patch.setattr(type(ledger), "record", crash_before_record)
        with pytest.raises(Crash):
            export_signals(trigger_batch("0", sent[8:15]))
    ledger.forget()
    # 2. A new instance (empty caches) gets the batch again, with the next one, and dies half-way
    #    through the writes: the first destination file write succeeds, then the process dies.
    dying = Runtime(service.settings)
    use_runtime(dying)
    written = {"n": 0}
    original = dying.destinations.sink

    def dying_sink(destination: Any) -> Any:
        sink = original(destination)

        class Dying:
            create, length, describe, read = sink.create, sink.length, sink.describe, sink.read
            max_append = sink.max_append

            def append(self, path: str, data: bytes, position: int) -> int:
                written["n"] += 1
                result = sink.append(path, data, position)
                if written["n"] == 2:
                    raise Crash
                return result

        return Dying()

    with monkeypatch.context() as patch:
        patch.setattr(dying.destinations, "sink", dying_sink)
        try:
            export_signals(trigger_batch("0", batches[0] + batches[1]))
        except Crash:
            pass
    # 3. Recovery on yet another instance: everything from the first batch on, cut differently, then
    #    the rest, then a repeat.
    use_runtime(Runtime(service.settings))
    export_signals(trigger_batch("0", sent[0:20]))
    export_signals(trigger_batch("0", sent[20:]))
    export_signals(trigger_batch("0", sent[30:]))
    use_runtime(service)
    check_destinations(customer, two_projects, sent, "0")


def test_two_instances_on_one_partition_at_once_export_each_signal_once(
    service: Runtime, customer: Customer, two_projects: dict[str, Any], azurite: Any
) -> None:
    """During a rebalance two instances process the same partition from the same checkpoint, concurrently."""
    producer = Producer(START)
    sent = mixed_traffic(producer, two_projects["alpha"], two_projects["beta"], 90)
    other = Runtime(service.settings)  # a second instance: its own clients, caches and ledger view
    export_a = service.exporter.export
    export_b = other.exporter.export
    from shared.eventhub import batch_from_trigger

    errors: list[BaseException] = []

    def run(export: Callable[..., Any], cuts: list[int]) -> None:
        try:
            for start, end in itertools.pairwise(cuts):
                export(batch_from_trigger(trigger_batch("5", sent[start:end])))
        except BaseException as error:  # surfaced below
            errors.append(error)

    cuts_a = [0, 10, 25, 40, 61, 80, len(sent)]
    cuts_b = [0, 7, 19, 33, 50, 72, 88, len(sent)]
    threads = [
        threading.Thread(target=run, args=(export_a, cuts_a)),
        threading.Thread(target=run, args=(export_b, cuts_b)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check_destinations(customer, two_projects, sent, "5")


def test_one_instance_exports_several_partitions_at_once(
    service: Runtime, customer: Customer, two_projects: dict[str, Any]
) -> None:
    """The worker may run invocations in parallel threads: each partition's signals land once."""
    from shared.eventhub import batch_from_trigger

    sent = {
        p: mixed_traffic(Producer(START), two_projects["alpha"], two_projects["beta"], 40) for p in "6789"
    }
    errors: list[BaseException] = []

    def run(partition: str) -> None:
        try:
            for start in range(0, len(sent[partition]), 9):
                service.exporter.export(
                    batch_from_trigger(trigger_batch(partition, sent[partition][start : start + 9]))
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(p,)) for p in sent]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for partition, events in sent.items():
        lake = counts(customer.lake_files(two_projects["fs_a"]))
        want = expected_adls(two_projects["lake"], "directory1/directory2", events, partition)
        assert all(lake[key] == 1 for key in want), partition
