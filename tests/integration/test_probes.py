"""Destination checks (probe writes) of several exports on one filesystem or container at the same moment."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devstack.adls_emulator import Fault
from shared.destinations import PROBE_FILE, DestinationClients
from shared.model import Destination
from tests.conftest import LAKE_CUSTOMER
from tests.integration.conftest import Customer

pytestmark = pytest.mark.integration

CHECKS = 8  # at once, each as a separate instance would make it (its own SDK clients)
ROUNDS = 3


def _destinations(customer: Customer, kind: str) -> tuple[str, list[Destination]]:
    """Several exports' destinations on one new filesystem (each its own directory) or one container."""
    place = f"{kind}-{uuid.uuid4().hex[:10]}"
    if kind == "adls":
        return place, [customer.adls(place, f"export{i}/") for i in range(CHECKS)]
    return place, [customer.blob(place) for _ in range(CHECKS)]


def _left(customer: Customer, kind: str, place: str) -> list[str]:
    """What is in the filesystem or container, read back with the SDK."""
    return sorted(customer.lake_files(place) if kind == "adls" else customer.blobs(place))


@pytest.mark.parametrize("kind", ["adls", "blob"])
def test_checks_at_once_on_one_filesystem_or_container_all_pass_and_leave_no_probe(
    customer: Customer, kind: str
) -> None:
    """Eight exports' destination checks at the same moment, three times over: every one passes, no probe is left."""
    place, destinations = _destinations(customer, kind)
    DestinationClients().prepare(destinations[0])
    barrier = threading.Barrier(CHECKS)

    def check(destination: Destination) -> Any:
        clients = DestinationClients()
        barrier.wait()
        return clients.probe_write(destination)

    with ThreadPoolExecutor(CHECKS) as pool:
        for _ in range(ROUNDS):
            failures = list(pool.map(check, destinations))
            assert failures == [None] * CHECKS
    assert _left(customer, kind, place) == []


def test_a_failed_check_deletes_its_probe(customer: Customer, lake: Any) -> None:
    """A check whose append is refused fails with the cause, and the probe it created is deleted."""
    place, destinations = _destinations(customer, "adls")
    clients = DestinationClients()
    clients.prepare(destinations[0])
    fault = lake.add_fault(
        Fault(
            status=403,
            code="AuthorizationPermissionMismatch",
            message="This request is not authorized to perform this operation using this permission.",
            operations={"append"},
            account=LAKE_CUSTOMER,
            path_prefix=f"{place}/{PROBE_FILE}",
            times=1,
        )
    )
    try:
        failure = clients.probe_write(destinations[0])
    finally:
        lake.remove_fault(fault)
    assert failure is not None and failure.cause.value == "permission-missing"
    assert _left(customer, "adls", place) == []
