"""Resume and replay: the backlog written exactly once where readers find it, whatever goes wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from devstack.adls_emulator import AdlsEmulator, Fault
from devstack.azurite import Azurite
from devstack.queue_runner import QueueRunner
from shared.backlog import held_file
from shared.model import Export, ExportStatus
from shared.resume import ResumeRefused
from shared.runtime import Runtime
from shared.settings import BACKLOG_CONTAINER
from tests.conftest import LAKE_CUSTOMER
from tests.integration.conftest import (
    Customer,
    DiesAfterAReplayWrite,
    Traffic,
    all_lines,
    instance,
    regenerated_key,
    run_health_check,
)
from tests.support import registered

pytestmark = pytest.mark.integration

HOUR = 3600.0
STALE_FOR = HOUR  # seconds: an export cache that outlives the test (EXPORT_CACHE_SECONDS)


def runner(service: Runtime, **options: Any) -> QueueRunner:
    """The queue trigger with the host's semantics, calling replay_backlog as registered."""
    return QueueRunner(service.replay_queue, service.poison_queue, registered("replay_backlog"), **options)


def backlog_count(azurite: Azurite, export: Export) -> int:
    container = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        BACKLOG_CONTAINER
    )
    return len(list(container.list_blobs(name_starts_with=f"{export.project_id}/{export.export_id}/")))


@pytest.fixture
def postponed(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> dict[str, Any]:
    """An ADLS export that exported 10 signals, then failed and postponed with 25 in its backlog."""
    fs = f"rp{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, "signals"))
    traffic.send(10)
    run_health_check()
    with regenerated_key(lake):
        traffic.send(15)
        run_health_check()
        service.registry.invalidate()
        traffic.send(10)
    assert service.exports.get(export.project_id, export.export_id)[0].status is ExportStatus.POSTPONED
    return {"export": export, "fs": fs}


def test_resume_writes_the_backlog_once_where_a_reader_moving_forward_finds_it(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any], azurite: Azurite
) -> None:
    """After resume, every backlogged signal is written once: into its live file while its hour is
    still current (caught up at the position the file was held at), else into a replay file in the
    folder of the hour of the replay."""
    export = postponed["export"]
    resumed_at = datetime.fromtimestamp(service.clock(), UTC)
    result = service.resumer.resume(export)
    assert result.work_items >= 1
    runner(service).drain()
    files = customer.lake_files(postponed["fs"])
    assert all_lines(files) == traffic.lines()
    for event in traffic.sent[10:]:
        t = event.enqueued
        (path,) = [p for p, lines in files.items() if event.body in lines]
        if f"{t:%Y%m%d%H}" == f"{resumed_at:%Y%m%d%H}":
            assert path == f"signals/{t:%Y/%m/%d/%H}/lake_0.jsonl", path
        else:
            assert path.startswith(f"signals/{resumed_at:%Y/%m/%d/%H}/lake_0_replay-"), path
    view = service.health_view.of(export.project_id, export.export_id)
    assert view["status"] == "active" and view["backlog"]["files"] == 0
    progress = {key: view["replay"][key] for key in ("itemsLeft", "bytesLeft", "poisonedItems")}
    assert progress == {"itemsLeft": 0, "bytesLeft": 0, "poisonedItems": 0}
    assert backlog_count(azurite, export) == 0


def test_resume_is_refused_while_the_destination_still_fails(
    service: Runtime, postponed: dict[str, Any], lake: AdlsEmulator
) -> None:
    """A resume with the key still wrong changes nothing and says what to check."""
    export = postponed["export"]
    with regenerated_key(lake), pytest.raises(ResumeRefused) as refused:
        service.resumer.resume(export)
    assert refused.value.cause == "authentication-failed" and refused.value.hints
    assert service.exports.get(export.project_id, export.export_id)[0].status is ExportStatus.POSTPONED


def test_a_replay_message_delivered_twice_writes_each_signal_once(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any]
) -> None:
    """At-least-once queue delivery: every work item handled twice, nothing duplicated."""
    service.resumer.resume(postponed["export"])
    handler = registered("replay_backlog")
    twice = QueueRunner(
        service.replay_queue, service.poison_queue, lambda message: (handler(message), handler(message))
    )
    twice.drain()
    assert all_lines(customer.lake_files(postponed["fs"])) == traffic.lines()


def test_a_crash_after_the_replay_write_before_the_backlog_removal_duplicates_nothing(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any]
) -> None:
    """The replay file is written, then the instance dies; the message comes back and finishes the job."""
    later = service.clock() + HOUR  # the backlog's hours have ended: it is replayed into replay files
    service.clock = lambda: later
    service.resumer.resume(postponed["export"])
    dying = runner(service, max_dequeue_count=100)
    with instance(DiesAfterAReplayWrite(service.settings, clock=service.clock), then=service):
        dying.run_once()
    assert dying.failures  # it died after writing
    runner(service).drain()
    assert all_lines(customer.lake_files(postponed["fs"])) == traffic.lines()


def test_a_destination_failing_during_replay_ends_in_poison_and_a_new_resume_picks_it_up(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any], lake: AdlsEmulator
) -> None:
    """Replay fails 5 times: poison queue, shown in health; fixed and resumed again: all written once."""
    export = postponed["export"]
    service.resumer.resume(export)
    with regenerated_key(lake):
        failing = runner(service)
        failing.drain()
    assert (
        len(failing.failures)
        == 5 * service.health_view.of(export.project_id, export.export_id)["replay"]["poisonedItems"]
    )
    view = service.health_view.of(export.project_id, export.export_id)
    assert view["replay"]["poisonedItems"] >= 1 and view["backlog"]["files"] >= 1
    service.resumer.resume(export)
    runner(service).drain()
    assert all_lines(customer.lake_files(postponed["fs"])) == traffic.lines()
    assert service.health_view.of(export.project_id, export.export_id)["replay"]["poisonedItems"] == 0


def test_live_signals_arriving_during_replay_are_exported_live_and_once(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any]
) -> None:
    """New signals go to live files while the backlog drains into replay files."""
    service.resumer.resume(postponed["export"])
    service.registry.invalidate()
    queue = runner(service, batch_size=1)
    while True:
        traffic.send(4)
        if queue.run_once() == 0:
            break
    assert all_lines(customer.lake_files(postponed["fs"])) == traffic.lines()


def test_signals_added_to_the_backlog_while_it_replays_are_replayed_too(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any], lake: AdlsEmulator
) -> None:
    """An instance whose cache still says postponed appends to the backlog during replay: not lost."""
    export = postponed["export"]
    # Another instance, whose cache read the export while postponed and keeps it for the test's length.
    stale = Runtime(replace(service.settings, export_cache_seconds=STALE_FOR), clock=service.clock)
    assert stale.registry.exports_of(export.project_id)[0].status is ExportStatus.POSTPONED
    service.resumer.resume(export)
    queue = runner(service, batch_size=1)
    from shared.eventhub import batch_from_trigger
    from tests.support import trigger_batch

    while True:
        batch = [
            traffic.producer.send(
                b'{"name":"late","n":%d}' % len(traffic.sent), {"projectId": traffic.project}
            )
            for _ in range(3)
        ]
        report = stale.exporter.export(batch_from_trigger(trigger_batch("0", batch)))
        assert report.exports[export.key].backlogged == len(batch)  # postponed, as far as it knows
        traffic.sent.extend(batch)
        if queue.run_once() == 0:
            break
    service.resumer.resume(export)  # the late signals were backlogged after the items were enqueued
    runner(service).drain()
    assert all_lines(customer.lake_files(postponed["fs"])) == traffic.lines()


def test_blob_exports_replay_into_their_minute_folders(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    azurite: Azurite,
) -> None:
    """Blob destination: container deleted, recreated by resume, backlog replayed in the AI layout, in
    the folders of the minute of the replay."""
    container = f"rb{traffic.project[-8:]}"
    export = create_export(traffic.project, "ai", customer.blob(container))
    traffic.send(6)
    run_health_check()
    client = BlobServiceClient(
        customer.blob_url,
        credential={"account_name": "customerblob", "account_key": export.destination.key.value},
    )
    client.delete_container(container)
    traffic.send(9)
    run_health_check()
    assert service.exports.get(export.project_id, export.export_id)[0].status is ExportStatus.POSTPONED
    resumed = service.clock() + 120  # minutes later: the minutes' blobs are done
    service.clock = lambda: resumed
    service.resumer.resume(export)
    runner(service).drain()
    blobs = customer.blobs(container)
    assert all_lines(blobs) == traffic.lines(traffic.sent[6:])  # the deleted container took the first 6
    t = datetime.fromtimestamp(resumed, UTC)
    for event in traffic.sent[6:]:
        (path,) = [p for p, lines in blobs.items() if event.body in lines]
        name = event.body.split(b'"name":"')[1].split(b'"')[0].decode()
        assert path.startswith(f"{traffic.project}/{name}/{t:%Y-%m-%d}/{t:%H}/{t:%Y%m%d_%H%M}_ai_0_replay-")


def test_a_write_of_unknown_outcome_that_did_land_is_not_replayed_again(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    azurite: Azurite,
) -> None:
    """The connection drops on append: the file is held there; if the data did land, replay skips it."""
    fs = f"un{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    traffic.send(3)
    fault = lake.add_fault(
        Fault(drop_connection=True, operations={"append"}, account=LAKE_CUSTOMER, path_prefix=fs)
    )
    try:
        lost_response = traffic.send(4)
    finally:
        lake.remove_fault(fault)
    container = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        BACKLOG_CONTAINER
    )
    (blob,) = list(container.list_blobs(name_starts_with=f"{export.project_id}/lake/"))
    # The backlog file is named by the live file and the position it was held at: where the write aimed.
    held = held_file(blob.name, *export.key)
    live_path = held.path
    sink = service.destinations.sink(export.destination)
    length = sink.length(live_path) or 0
    assert held.position == length
    # The storage did write it before the connection dropped: put the bytes where the append aimed.
    sink.append(live_path, b"".join(e.body + b"\n" for e in lost_response), length)
    service.exports.set_status(export.project_id, export.export_id, ExportStatus.POSTPONED, cause="transient")
    service.resumer.resume(export)
    runner(service).drain()
    assert all_lines(customer.lake_files(fs)) == traffic.lines()


def test_deleting_an_export_discards_its_backlog_ledger_and_health_but_not_its_data(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any], azurite: Azurite
) -> None:
    """After delete, nothing of the export remains in the service; the customer's files stay."""

    export = postponed["export"]
    before = customer.lake_files(postponed["fs"])
    service.exports.delete(export.project_id, export.export_id)
    assert service.cleanup.forget(export.project_id, export.export_id) >= 1
    assert backlog_count(azurite, export) == 0
    rows = list(
        service.ledger_table.query_entities(
            "RowKey eq @r", parameters={"r": f"{export.project_id}|{export.export_id}"}
        )
    )
    assert rows == []
    assert service.health_records.get(export.project_id, export.export_id).history == []
    assert customer.lake_files(postponed["fs"]) == before
