"""Isolation: no event, row, export or bug of ours stops anyone else, and nothing waits in a backlog
unseen. Through the registered functions, on Azurite and the ADLS Gen2 emulator, reading every
destination back."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cached_property
from typing import Any

import orjson
import pytest
from azure.data.tables import UpdateMode
from azure.storage.blob import BlobServiceClient

from devstack.adls_emulator import AdlsEmulator, Fault
from devstack.queue_runner import QueueRunner
from shared.delivery import FileSink
from shared.destinations import DestinationClients
from shared.eventhub import batch_from_trigger
from shared.exports import ExportRegistry
from shared.model import Destination, Export, ExportStatus
from shared.outcomes import Cause
from shared.runtime import Runtime
from shared.settings import DEADLETTER_CONTAINER
from tests.conftest import LAKE_CUSTOMER
from tests.integration.conftest import Customer, Traffic, all_lines, instance, run_health_check
from tests.support import registered, signal, trigger_batch

pytestmark = pytest.mark.integration

STALE_FOR = 3600.0  # seconds: an export cache that outlives the test (EXPORT_CACHE_SECONDS)


def drain_replays(service: Runtime) -> None:
    QueueRunner(service.replay_queue, service.poison_queue, registered("replay_backlog")).drain()


def counters(service: Runtime, export: Export) -> dict[str, Any]:
    view = service.health_view.of(export.project_id, export.export_id)
    return {"status": view["status"], "cause": view["cause"], **view["counters"], "backlog": view["backlog"]}


class Bug(DestinationClients):
    """A bug of ours that strikes the writes of chosen exports (a TypeError in their write path). The
    seam is the service's own client factory, which the composition root hands to the export path, not
    an Azure SDK call."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[Destination] = set()

    def sink(self, destination: Destination) -> FileSink:
        if destination in self.broken:
            raise TypeError("a bug in the service's write path")
        return super().sink(destination)

    def strike(self, export: Export) -> None:
        self.broken.add(export.destination)

    def fix(self) -> None:
        self.broken.clear()


class WithABugInItsWrites(Runtime):
    """An instance of the service whose destinations' clients are a Bug."""

    @cached_property
    def destinations(self) -> Bug:
        return Bug()


@pytest.fixture
def bug(service: Runtime) -> Iterator[Bug]:
    """The registered functions run on an instance with a Bug in its write path; `service` reads."""
    buggy = WithABugInItsWrites(service.settings, clock=service.clock)
    with instance(buggy, then=service):
        yield buggy.destinations


def test_a_bug_of_ours_for_one_export_stops_nobody_and_is_not_blamed_on_the_customer(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    bug: Bug,
) -> None:
    """The faulty export's signals are kept (the service's fault, not the customer's), the other
    export gets everything, nobody is postponed, and once the fault is gone every signal is exported
    once."""
    fs = f"iso{traffic.project[-8:]}"
    healthy = create_export(traffic.project, "healthy", customer.adls(fs, "a"))
    broken = create_export(traffic.project, "broken", customer.adls(fs, "b"))
    bug.strike(broken)
    for _ in range(3):
        traffic.send(5)
        run_health_check()
    assert counters(service, broken)["status"] == "active"  # not postponed for a fault of ours
    assert counters(service, healthy)["exported"] == 15
    assert counters(service, broken)["failedWrites"] == 0 and counters(service, broken)["cause"] is None
    files = customer.lake_files(fs)
    assert all_lines({p: lines for p, lines in files.items() if p.startswith("a/")}) == traffic.lines()
    assert not any(p.startswith("b/") and lines for p, lines in files.items())
    bug.fix()
    traffic.send(5)  # the next batch catches the held file up: backlog first, then its own signals
    run_health_check()
    drain_replays(service)
    files = customer.lake_files(fs)
    assert all_lines({p: lines for p, lines in files.items() if p.startswith("b/")}) == traffic.lines()
    view = counters(service, broken)
    assert view["exported"] + view["backlogged"] == len(traffic.sent)  # each signal counted once
    assert view["backlog"]["files"] == 0


def test_one_unreadable_export_row_stops_no_other_export(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
) -> None:
    """A row whose key was sealed under a service key that is gone: the other exports go on, the
    health check goes on, and the row's health view says what it is and what to do."""
    fs = f"row{traffic.project[-8:]}"
    healthy = create_export(traffic.project, "healthy", customer.adls(fs, "a"))
    create_export(traffic.project, "unreadable", customer.adls(fs, "b"))
    service.exports_table.update_entity(
        {"PartitionKey": traffic.project, "RowKey": "unreadable", "sealed_key": "v1.not-a-sealed-key"},
        mode=UpdateMode.MERGE,
    )
    service.registry.invalidate()
    traffic.send(8)
    run_health_check()
    files = customer.lake_files(fs)
    assert all_lines({p: lines for p, lines in files.items() if p.startswith("a/")}) == traffic.lines()
    assert counters(service, healthy)["exported"] == 8
    view = service.health_view.of(traffic.project, "unreadable")
    assert view["status"] == "unreadable" and view["cause"] == "configuration-unreadable"
    assert any("KEY_ENCRYPTION_KEY" in hint for hint in view["hints"])
    service.exports_table.delete_entity(traffic.project, "unreadable")  # the table is shared by the tests


def test_a_backlog_left_by_a_write_past_its_deadline_is_replayed_while_the_export_stays_active(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> None:
    """A write whose outcome is unknown (the connection dropped) leaves signals in the backlog of an
    export that stays active; the health check has them replayed: nothing waits for retention."""
    fs = f"tend{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    traffic.send(4)
    fault = lake.add_fault(
        Fault(drop_connection=True, operations={"append"}, account=LAKE_CUSTOMER, path_prefix=fs)
    )
    try:
        traffic.send(4)
    finally:
        lake.remove_fault(fault)
    assert counters(service, export)["backlog"]["files"] == 1
    run_health_check()  # the failure is seen: not healthy yet, nothing queued
    run_health_check()  # a check without failures: the backlog is queued for replay
    drain_replays(service)
    assert all_lines(customer.lake_files(fs)) == traffic.lines()
    view = counters(service, export)
    assert view["status"] == "active" and view["backlog"]["files"] == 0


def test_a_backlog_left_by_an_instance_that_still_thought_the_export_postponed_is_replayed(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
) -> None:
    """Another instance's cache still says postponed after the export was resumed: what it put in the
    backlog is replayed by the health check, once."""
    fs = f"stale{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    traffic.send(3)
    service.exports.set_status(*export.key, ExportStatus.POSTPONED, cause=Cause.AUTHENTICATION.value)
    stale = Runtime(replace(service.settings, export_cache_seconds=STALE_FOR), clock=service.clock)
    assert stale.registry.exports_of(export.project_id)[0].status is ExportStatus.POSTPONED
    service.resumer.resume(export)
    batch = [traffic.producer.send(*signal(traffic.project, "late", 100 + i)) for i in range(4)]
    report = stale.exporter.export(batch_from_trigger(trigger_batch("0", batch)))
    assert report.exports[export.key].backlogged == len(batch)  # postponed, as far as it knows
    traffic.sent.extend(batch)
    traffic.send(2)
    run_health_check()
    run_health_check()
    drain_replays(service)
    assert all_lines(customer.lake_files(fs)) == traffic.lines()
    assert counters(service, export)["backlog"]["files"] == 0


class PlanningBug(ExportRegistry):
    """The exports as the export path plans with them, with a bug of ours in the lookup until fixed."""

    fixed = False

    def exports_of(self, project_id: str) -> list[Export]:
        if not self.fixed:
            raise KeyError("a bug in planning")
        return super().exports_of(project_id)


class PlansWithABug(Runtime):
    """An instance of the service whose export path plans with a PlanningBug."""

    @cached_property
    def registry(self) -> PlanningBug:
        return PlanningBug(self.exports.list, max_age=self.settings.export_cache_seconds)


def test_a_batch_that_keeps_failing_on_a_bug_of_ours_is_set_aside_and_the_partition_moves_on(
    service: Runtime, customer: Customer, create_export: Callable[..., Export], traffic: Traffic, azurite: Any
) -> None:
    """A deterministic bug outside the per-file boundary: the batch is retried, then set aside as dead
    letters (reason service-fault, bodies kept whole), and the next batch is exported."""
    fs = f"aside{traffic.project[-8:]}"
    create_export(traffic.project, "lake", customer.adls(fs, ""))
    faulty = PlansWithABug(service.settings, clock=service.clock)
    function = registered("export_signals")
    batch = [traffic.producer.send(*signal(traffic.project, "click", i)) for i in range(3)]
    with instance(faulty, then=service):
        for _ in range(2):
            with pytest.raises(KeyError):
                function(trigger_batch("0", batch))  # the trigger's retry policy runs it again
        function(trigger_batch("0", batch))  # the third time, it is set aside
        faulty.registry.fixed = True
        traffic.sent.extend(batch)
        later = traffic.send(3)  # the next batch, on the same instance
    assert all_lines(customer.lake_files(fs)) == traffic.lines(later)
    container = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        DEADLETTER_CONTAINER
    )
    kept = [orjson.loads(container.download_blob(b.name).readall()) for b in container.list_blobs()]
    mine = [k for k in kept if k["projectId"] == traffic.project]
    assert [k["reason"] for k in mine] == ["service-fault"] * 3
    assert sorted(base64.b64decode(k["bodyBase64"]) for k in mine) == sorted(e.body for e in batch)
