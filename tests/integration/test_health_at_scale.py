"""The health check at scale: idle exports cost nothing, two checks at once or a check killed midway
change nothing, a check that cannot finish in its time shares its work out, and each instance reads
only the exports of the projects in its batches. On Azurite and the ADLS Gen2 emulator, through the
registered functions, counting requests at the storage endpoint."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from devstack.adls_emulator import AdlsEmulator
from devstack.azurite import Azurite
from devstack.queue_runner import QueueRunner
from shared.exports import Exports, StaleExport
from shared.health.check import HealthItem
from shared.health.due import STATE
from shared.ledger import partition_key
from shared.ledger import row_key as ledger_row
from shared.model import Export, ExportStatus
from shared.requests import RequestCounter
from shared.runtime import Runtime, use_runtime
from tests.integration.conftest import Customer, Traffic, regenerated_key, run_health_check, server_busy
from tests.support import registered

pytestmark = pytest.mark.integration


def counted(service: Runtime, azurite: Azurite, **changes: Any) -> tuple[Runtime, RequestCounter]:
    """Another instance of the service, on the same storage, whose table requests are counted by table
    (an entity-group transaction counts as `batch`), installed as the one the functions use."""
    table = f"127.0.0.1:{azurite.table_port}"
    counter = RequestCounter(
        {
            f"{table}/devstoreaccount1/exporthealth": "health",
            f"{table}/devstoreaccount1/exportdue": "due",
            f"{table}/devstoreaccount1/exportledger": "ledger",
            f"{table}/devstoreaccount1/exports": "exports",
            f"{table}/devstoreaccount1/$batch": "batch",
            f"{table}/": "table",
        }
    )
    runtime = Runtime(dataclasses.replace(service.settings, **changes), request_hook=counter)
    use_runtime(runtime)
    return runtime, counter


LABELS = ("health", "due", "ledger", "exports", "batch", "table")


def table_requests(counter: RequestCounter) -> int:
    return sum(counter.counts[label] for label in LABELS)


def idle_exports(service: Runtime, customer: Customer, project: str, count: int) -> list[Export]:
    """Exports stored as the API stores them (each one due once: it is new), that never get a signal."""
    exports = []
    for index in range(count):
        export = Export(f"{project}-{index % 7}", f"idle{index}", customer.adls(f"idle{project[-8:]}", ""))
        service.exports.put(export)
        exports.append(export)
    return exports


@pytest.fixture
def frozen(service: Runtime) -> Iterator[Callable[[float], None]]:
    """Set the service's clock (checks, marks, deadlines) to a fixed time."""
    original = service.clock

    def set_to(at: float) -> None:
        service.clock = lambda: at

    yield set_to
    service.clock = original


def test_idle_exports_cost_the_health_check_no_table_request(
    service: Runtime, azurite: Azurite, customer: Customer, traffic: Traffic, frozen: Callable[[float], None]
) -> None:
    """A check costs the same table requests with 60 idle exports as with 30, and a new export's record
    is written once, at its first check, not at each of its first five. (The storage is shared with the
    worker's earlier tests, whose watched exports cost each check the same requests throughout.)"""
    local, counter = counted(service, azurite)
    now = service.clock()
    frozen(now)
    local.clock = service.clock
    exports = idle_exports(local, customer, traffic.project, 30)
    run_health_check()  # each new export is judged once
    counter.reset()
    run_health_check()
    with_30 = dict(counter.counts)
    exports += idle_exports(local, customer, traffic.project + "b", 30)
    counter.reset()
    run_health_check()
    first_writes = counter.counts["health"] + counter.counts["batch"]
    saved = [service.health_records.read(*export.key)[1] for export in exports]
    assert None not in saved
    for _ in range(5):
        counter.reset()
        run_health_check()
        assert counter.counts["health"] == with_30.get("health", 0)
        assert counter.counts["ledger"] == with_30.get("ledger", 0)
    assert table_requests(counter) == sum(with_30.get(label, 0) for label in LABELS)
    assert [service.health_records.read(*export.key)[1] for export in exports] == saved
    assert first_writes >= 1
    record = local.health_records.get(f"{traffic.project}b-0", "idle0")
    assert record.since == now and record.ticks == [record.ticks[0]] and record.tick_seq > 0


def test_the_checks_an_export_sat_out_count_as_the_empty_ticks_they_would_have_taken(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> None:
    """A healthy export sits out five checks (nothing to judge): its success rate is unknown again, and
    the writes before them no longer weigh against throttling that then persists for three checks."""
    fs = f"gaps{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    for _ in range(2):
        traffic.send(20)
        run_health_check()
    assert service.health_view.of(*export.key)["successRate"] == 1.0
    later = service.clock() + 120  # the minute of its writes is over: the check judges them one last time
    service.clock = lambda: later
    for _ in range(5):
        run_health_check()
    assert service.health_view.of(*export.key)["successRate"] is None
    with server_busy(lake, fs):
        for check in range(3):
            traffic.send(2)
            run_health_check()
            expected = ExportStatus.POSTPONED if check == 2 else ExportStatus.ACTIVE
            assert service.exports.get(*export.key)[0].status is expected, f"after check {check + 1}"
    assert service.health_view.of(*export.key)["cause"] == "throttled"


def test_two_checks_at_once_change_an_export_once(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> None:
    """Two instances judge the same export at the same time: the record is saved by the first one only,
    the other reads it again and finds it judged, so the export is postponed once, with one history
    entry and one webhook."""
    first = Runtime(dataclasses.replace(service.settings, allow_private_webhooks=True))
    second = Runtime(first.settings)
    use_runtime(first)
    fs = f"twice{traffic.project[-8:]}"
    export = Export(
        traffic.project, "lake", customer.adls(fs, ""), webhook="https://hooks.example/x", generation="g1"
    )
    first.destinations.prepare(export.destination)
    first.exports.put(export)
    with regenerated_key(lake):
        traffic.send(3)
    notify_before = first.notify_queue.get_queue_properties().approximate_message_count or 0
    save_if = first.health_records.save_if
    interleaved = threading.Event()

    def late_save(record: Any, etag: Any) -> str:
        if not interleaved.is_set():
            interleaved.set()
            report = second.health_check.run_item(item)  # the other instance judges it meanwhile
            assert [change[2] for change in report.changes] == ["postponed"]
        return save_if(record, etag)

    first.health_records.save_if = late_save  # type: ignore[method-assign]
    state, _ = first.due.state("check")
    item = HealthItem(
        int(state.get("seq", 0)) + 1, first.clock(), f"{traffic.project}|", f"{traffic.project}}}"
    )
    report = first.health_check.run_item(item)
    assert interleaved.is_set() and report.changes == []
    view = first.health_view.of(*export.key)
    assert view["status"] == "postponed"
    assert [entry["to"] for entry in view["history"]] == ["postponed"]
    notify_after = first.notify_queue.get_queue_properties().approximate_message_count or 0
    assert notify_after - notify_before == 1


def test_two_timers_at_once_make_one_check(service: Runtime) -> None:
    """Two instances' timers fire together: one check begins, the other stands down."""
    other = Runtime(service.settings)
    reports: list[Any] = []
    barrier = threading.Barrier(2)

    def run(runtime: Runtime) -> None:
        barrier.wait()
        reports.append(runtime.health_check.run())

    threads = [threading.Thread(target=run, args=(runtime,)) for runtime in (service, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seqs = {report.seq for report in reports if not report.skipped}
    assert len(seqs) == len([report for report in reports if not report.skipped])  # never one number twice


def test_a_check_killed_after_saving_a_change_is_finished_by_the_next(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> None:
    """The check dies between saving the decision and changing the export: the next check finishes the
    change (status, history), once."""
    fs = f"killed{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    set_status = service.exports.set_status

    def dies(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the instance went away")

    service.exports.set_status = dies  # type: ignore[method-assign]
    with regenerated_key(lake):
        traffic.send(3)
        run_health_check()
        assert service.exports.get(*export.key)[0].status is ExportStatus.ACTIVE
        assert service.health_records.get(*export.key).pending is not None
        service.exports.set_status = set_status  # type: ignore[method-assign]
        run_health_check()
        run_health_check()
    view = service.health_view.of(*export.key)
    assert view["status"] == "postponed" and view["cause"] == "authentication-failed"
    assert [entry["to"] for entry in view["history"]] == ["postponed"]
    assert service.health_records.get(*export.key).pending is None


def test_a_check_that_cannot_finish_in_its_time_shares_its_work_out(
    service: Runtime,
    azurite: Azurite,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> None:
    """With no time of its own, the timer hands every due export to the queue by range of projects; the
    next timer waits while the items are open; the queue function judges them."""
    fs = f"share{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    run_health_check()
    busy, _ = counted(service, azurite, health_inline_seconds=1e-9)
    with regenerated_key(lake):
        traffic.send(3)
        report = busy.health_check.run()
        assert report.items >= 1 and report.checked == 0
        assert busy.health_check.run().skipped
        assert busy.exports.get(*export.key)[0].status is ExportStatus.ACTIVE
        runner = QueueRunner(
            busy.health_queue, busy.queue("export-health-poison"), registered("check_health_range")
        )
        assert runner.drain() == report.items
    assert busy.exports.get(*export.key)[0].status is ExportStatus.POSTPONED
    again = busy.health_check.run()
    assert not again.skipped
    assert runner.drain() == again.items  # leaves no item open for the next test's checks


def test_a_record_of_an_earlier_version_is_read_across_every_partition_once(
    service: Runtime, customer: Customer, create_export: Callable[..., Export], traffic: Traffic
) -> None:
    """A record with totals only (as the version before kept them): its next tick counts only what is
    new, whatever partition it came from."""
    fs = f"legacy{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    traffic.send(5)
    other = Traffic(traffic.project, partition="1")
    other.send(4)
    run_health_check()
    entity = dict(service.health_table.get_entity(*export.key))
    for name in ("parts", "tick_seq", "ticked_at", "ticking", "pending", "due_at"):
        entity.pop(name, None)
    service.health_table.upsert_entity(entity, mode=UpdateMode.REPLACE)
    assert service.health_records.get(*export.key).parts is None
    traffic.send(3)
    run_health_check()
    record = service.health_records.get(*export.key)
    assert record.ticks[-1].exported == 3
    assert set(record.parts or {}) == {partition_key(service.settings.eventhub_name, p) for p in "01"}


def test_a_new_version_makes_every_export_due_once(
    service: Runtime, customer: Customer, traffic: Traffic
) -> None:
    """An export stored without a mark (before this version, or by hand) is judged once the first check
    of a new version has swept the table."""
    hidden = Exports(service.exports_table, service.keys, clock=service.now)  # writes without marking
    export = Export(traffic.project, "unmarked", customer.adls(f"new{traffic.project[-8:]}", ""))
    hidden.put(export)
    run_health_check()
    assert service.health_records.read(*export.key)[0] is None
    state, etag = service.due.state("check")
    service.due.save_state("check", {**state, "sweep_version": 0}, etag)
    run_health_check()
    assert service.health_records.read(*export.key)[0] is not None


def test_each_instance_reads_only_the_exports_of_the_projects_in_its_batches(
    service: Runtime,
    azurite: Azurite,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
) -> None:
    """The first batch of a project costs one query of the exports table, however many exports other
    projects have; a project with no export is one cached answer."""
    create_export(traffic.project, "lake", customer.adls(f"own{traffic.project[-8:]}", ""))
    idle_exports(service, customer, traffic.project + "x", 40)
    local, counter = counted(service, azurite)
    traffic.send(5)
    assert counter.counts["exports"] == 1
    counter.reset()
    traffic.send(5)
    assert counter.counts["exports"] == 0
    nobody = Traffic(traffic.project + "-none")
    counter.reset()
    nobody.send(3)
    nobody.send(3)
    assert counter.counts["exports"] == 1
    local.registry.invalidate()  # what EXPORT_CACHE_SECONDS does
    counter.reset()
    traffic.send(1)
    assert counter.counts["exports"] == 1


def test_the_due_index_holds_only_what_is_pending(
    service: Runtime, customer: Customer, traffic: Traffic
) -> None:
    """Once judged (and its minute over), nothing of an idle export stays in the index."""
    export = idle_exports(service, customer, traffic.project, 1)[0]
    run_health_check()
    later = service.clock() + 120
    service.clock = lambda: later
    run_health_check()
    rows = list(
        service.due_table.query_entities(
            "RowKey ge @low and RowKey lt @high and PartitionKey ne @state",
            parameters={
                "low": ledger_row(*export.key),
                "high": ledger_row(*export.key) + "~",
                "state": STATE,
            },
        )
    )
    assert rows == []


def test_exports_stored_at_once_are_stored_together_or_not_at_all(
    service: Runtime, customer: Customer, traffic: Traffic
) -> None:
    """A bulk import (`Exports.create_all`, the benchmark's thousands) stores a project's exports in one
    transaction, readable as the API stores them; when one of them exists, none of its transaction is
    stored and the existing one is left as it was."""
    store = Exports(service.exports_table, service.keys, clock=service.now)
    destination = customer.adls(f"bulk{traffic.project[-8:]}", "")
    exports = [Export(traffic.project, f"bulk{index}", destination) for index in range(3)]
    store.create_all(exports)
    stored = {export.export_id: export for export in service.exports.list(traffic.project)}
    assert set(stored) == {"bulk0", "bulk1", "bulk2"}
    assert all(
        stored[e.export_id].destination == destination and stored[e.export_id].generation for e in exports
    )
    _, etag = service.exports.get(traffic.project, "bulk1")
    again = [Export(traffic.project, "bulk3", destination), Export(traffic.project, "bulk1", destination)]
    with pytest.raises(StaleExport):
        store.create_all(again)
    assert service.exports.find(traffic.project, "bulk3") is None
    assert service.exports.get(traffic.project, "bulk1")[1] == etag
