"""How long the backlog keeps signals: the retention period counts from a backlog file's latest signal,
not from when the file was made, so a file that went on taking signals keeps them all."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from azure.storage.blob import BlobServiceClient

from devstack.adls_emulator import AdlsEmulator
from devstack.azurite import Azurite
from shared.model import Export, ExportStatus
from shared.runtime import Runtime
from shared.settings import BACKLOG_CONTAINER
from tests.integration.conftest import Customer, Traffic, regenerated_key, run_health_check
from tests.integration.test_health import DAY, backlog_lines, status

pytestmark = pytest.mark.integration


def test_a_backlog_file_is_kept_for_the_retention_period_after_its_latest_signal(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    azurite: Azurite,
) -> None:
    """A backlog file made more than 7 days before the check, but added to less than 7 days before it,
    keeps every signal; once its latest signal is 7 days old, it expires and they are counted lost."""
    fs = f"ret{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    container = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        BACKLOG_CONTAINER
    )
    prefix = f"{export.project_id}/{export.export_id}/"
    with regenerated_key(lake):
        traffic.send(4)
        run_health_check()
        assert status(service, export) is ExportStatus.POSTPONED
        (blob,) = container.list_blobs(name_starts_with=prefix)
        # Storage keeps times in whole seconds: the next signals must come in a later second.
        time.sleep(max(0.0, blob.creation_time.timestamp() + 1.2 - time.time()))
        service.registry.invalidate()
        traffic.send(3)
    (grown,) = container.list_blobs(name_starts_with=prefix)
    assert grown.name == blob.name, "the later signals went to the same backlog file"
    made, latest = grown.creation_time.timestamp(), grown.last_modified.timestamp()
    assert latest > made
    service.clock = lambda: (made + latest) / 2 + 7 * DAY
    run_health_check()
    view = service.health_view.of(export.project_id, export.export_id)
    assert view["counters"]["lost"] == 0
    assert sum(backlog_lines(azurite, export).values()) == 7
    service.clock = lambda: latest + 7 * DAY + 1
    run_health_check()
    view = service.health_view.of(export.project_id, export.export_id)
    assert view["counters"]["lost"] == 7
    assert sum(backlog_lines(azurite, export).values()) == 0
