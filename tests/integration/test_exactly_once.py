"""Exactly once, through the registered Event Hub function, with two instances of the service that keep
their caches between batches: the two reproductions of the issue that the delivery protocol now
withstands (tests/unit/test_exactly_once.py checks every interleaving on in-memory stores)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from shared.model import Export
from shared.runtime import Runtime, use_runtime
from tests.integration.conftest import Customer, all_lines
from tests.support import Producer, Sent, registered, trigger_batch

pytestmark = pytest.mark.integration

HEARTBEAT = b'{"name":"heartbeat"}'


def heartbeats(producer: Producer, project: str, count: int) -> list[Sent]:
    """Byte-identical signals, as real devices send them (no timestamp, no id)."""
    return [producer.send(HEARTBEAT, {"projectId": project}) for _ in range(count)]


def on(instance: Runtime, batch: Sequence[Sent]) -> None:
    """The batch, delivered to the function running on this instance."""
    use_runtime(instance)
    registered("export_signals")(trigger_batch("0", batch))


def test_a_partition_handed_back_and_forth_exports_each_signal_once(
    service: Runtime, customer: Customer, create_export: Callable[..., Export], project: str
) -> None:
    """A exports batch 1; the partition moves to B, which exports batches 2 and 3 and records them but
    loses the lease before batch 3 is checkpointed; A gets it back and receives batch 3 again, with its
    ledger still at batch 1. Before, the file held 0,1,2,3,4,5,3,4,5."""
    fs = f"ho{project[-8:]}"
    create_export(project, "lake", customer.adls(fs, ""))
    a, b = Runtime(service.settings), Runtime(service.settings)
    producer = Producer(customer_start(service))
    batch1, batch2, batch3 = (heartbeats(producer, project, 2) for _ in range(3))
    try:
        on(a, batch1)
        on(b, batch2)
        on(b, batch3)  # recorded, never checkpointed: redelivered to the next owner
        on(a, batch3)
        batch4 = heartbeats(producer, project, 2)
        on(a, batch4)
    finally:
        use_runtime(service)
    assert all_lines(customer.lake_files(fs)) == {HEARTBEAT: 8}


def test_identical_signals_in_a_file_the_ledger_does_not_know_are_not_taken_for_new_ones(
    service: Runtime, customer: Customer, create_export: Callable[..., Export], project: str
) -> None:
    """Three heartbeats in the file of an export that was deleted and created again with the same id,
    then two new heartbeats, with no ledger record of the file: five lines, not three."""
    fs = f"id{project[-8:]}"
    export = create_export(project, "lake", customer.adls(fs, ""))
    producer = Producer(customer_start(service))
    on(service, heartbeats(producer, project, 3))
    registered_delete(service, export)
    create_export(project, "lake", customer.adls(fs, ""))  # a new export, same id, same files
    on(Runtime(service.settings), heartbeats(producer, project, 2))
    use_runtime(service)
    assert all_lines(customer.lake_files(fs)) == {HEARTBEAT: 5}


def test_a_writer_whose_cache_predates_the_file_finds_its_place_by_position(
    service: Runtime, customer: Customer, create_export: Callable[..., Export], project: str
) -> None:
    """B creates the hour's file and writes three heartbeats; A, whose cache has no record of it, gets
    the next two: five lines."""
    fs = f"pd{project[-8:]}"
    create_export(project, "lake", customer.adls(fs, ""))
    a, b = Runtime(service.settings), Runtime(service.settings)
    producer = Producer(customer_start(service))
    try:
        on(a, heartbeats(producer, project, 1))  # A's cache: this partition, before the file existed
        on(b, heartbeats(producer, project, 3))
        on(a, heartbeats(producer, project, 2))
    finally:
        use_runtime(service)
    assert all_lines(customer.lake_files(fs)) == {HEARTBEAT: 6}


def customer_start(service: Runtime) -> datetime:
    """Early in the current hour: every batch of a test lands in one hourly file."""
    return datetime.fromtimestamp(service.clock(), UTC).replace(minute=1, second=0, microsecond=0)


def registered_delete(service: Runtime, export: Export) -> None:
    """What DELETE does: the configuration and the service's state for it go; the files stay."""
    service.exports.delete(*export.key)
    service.cleanup.forget(*export.key)
    service.registry.invalidate()
