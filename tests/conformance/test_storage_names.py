"""Storage name rows against the stand-ins: names at the limits are written, exported, backlogged and
replayed on Azurite and the ADLS Gen2 emulator; a hostile signal name never postpones an export."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient
from azure.storage.filedatalake import DataLakeServiceClient

from devstack.azurite import Azurite
from devstack.queue_runner import QueueRunner
from shared.layout import MAX_DIRECTORY, MAX_POSITION, MAX_SEQUENCE, NAME_SEGMENT, blob_segment
from shared.model import Export, ExportStatus
from shared.runtime import Runtime
from shared.settings import BACKLOG_CONTAINER
from tests.conformance import sources
from tests.conformance.test_names_and_paths import longest_directory
from tests.conftest import BLOB_CUSTOMER, LAKE_CUSTOMER, LAKE_CUSTOMER_KEY
from tests.integration.conftest import Customer, Traffic, all_lines, regenerated_key, run_health_check
from tests.support import registered

pytestmark = pytest.mark.integration

HOSTILE = (
    "n" * NAME_SEGMENT,
    "n" * (NAME_SEGMENT + 1),
    "/../" + "\\" * 3000 + ".",
    "€" * 100_000,
)  # 600 KB as JSON escapes


def longest_id(prefix: str) -> str:
    return (prefix + uuid.uuid4().hex).ljust(63, "x")


def drain(service: Runtime) -> None:
    QueueRunner(service.replay_queue, service.poison_queue, registered("replay_backlog")).drain()


def backlog_names(service: Runtime, export: Export) -> list[str]:
    prefix = f"{export.project_id}/{export.export_id}/"
    return [b.name for b in service.backlog_container.list_blobs(name_starts_with=prefix)]


def test_hostile_signal_names_are_exported_backlogged_and_replayed_in_valid_blob_names(
    service: Runtime, customer: Customer, create_export: Callable[..., Export], azurite: Azurite
) -> None:
    """Signal names at the folder limit, one over, full of '/', '\\\\' and dots, and of 100,000 characters,
    with the longest ids and partition: every blob name stays within 1,024 characters, every signal
    lands once, live and after a replay, and the export is never postponed for a name."""
    traffic = Traffic(longest_id("p"), partition="1023")
    container = f"nm{uuid.uuid4().hex[:12]}"
    export = create_export(traffic.project, longest_id("e"), customer.blob(container))
    traffic.send(8, names=HOSTILE)
    run_health_check()
    blobs = customer.blobs(container)
    assert all_lines(blobs) == traffic.lines()
    assert all(len(name) <= sources.BLOB_NAME_MAX for name in blobs)
    folders = {name.split("/")[1] for name in blobs}
    assert folders == {blob_segment(n) for n in HOSTILE} and "n" * NAME_SEGMENT in folders
    owner = BlobServiceClient(
        customer.blob_url,
        credential={"account_name": BLOB_CUSTOMER, "account_key": export.destination.credential.value},
    )
    owner.delete_container(container)  # the destination breaks: signals go to the backlog
    traffic.send(8, names=HOSTILE)
    run_health_check()
    assert service.exports.get(*export.key)[0].status is ExportStatus.POSTPONED
    waiting = backlog_names(service, export)
    assert waiting and all(len(name) <= sources.BLOB_NAME_MAX for name in waiting)
    service.resumer.resume(export)
    drain(service)
    replayed = customer.blobs(container)
    assert all_lines(replayed) == traffic.lines(traffic.sent[8:])
    assert (
        all(len(name) <= sources.BLOB_NAME_MAX for name in replayed) and backlog_names(service, export) == []
    )


def test_the_longest_adls_directory_writes_live_backlog_and_replay_files_at_exactly_1024(
    service: Runtime, customer: Customer, create_export: Callable[..., Export], lake: Any
) -> None:
    """An ADLS Gen2 export under the longest directory the API accepts, with the longest ids and
    partition: its backlog blob name reaches 1,024 characters when the held position has all the
    digits a position can have, and live and replay files land."""
    traffic = Traffic(longest_id("p"), partition="1023")
    filesystem = f"lf{uuid.uuid4().hex[:12]}"
    directory = longest_directory(MAX_DIRECTORY)
    export = create_export(traffic.project, longest_id("e"), customer.adls(filesystem, directory))
    traffic.send(5)
    run_health_check()
    with regenerated_key(lake):
        traffic.send(5)
        run_health_check()
    assert service.exports.get(*export.key)[0].status is ExportStatus.POSTPONED
    # Held at a small position: the name is 1,024 less the digits a position could still take.
    (name,) = backlog_names(service, export)
    position, _, sequence = name.rpartition("@")[2].partition("-")
    unused = (MAX_POSITION - len(position)) + (MAX_SEQUENCE - len(sequence))
    assert len(name) == sources.BLOB_NAME_MAX - unused
    later = service.clock() + 2 * 3600  # resumed two hours later: the held hour has ended
    service.clock = lambda: later
    service.resumer.resume(export)
    drain(service)
    files = customer.lake_files(filesystem)
    assert all_lines(files) == traffic.lines() and backlog_names(service, export) == []
    assert any("_replay-" in path for path in files)


def test_the_adls_emulator_refuses_a_path_over_1024_characters_and_azurite_does_not_check(
    lake: Any, azurite: Azurite, service: Runtime
) -> None:
    """The emulator keeps Azure's limit (1,024 accepted, 1,025 refused); Azurite accepts longer blob
    names, so the layout's own bound (test_names_and_paths) is what keeps names valid there."""
    lake_service = DataLakeServiceClient(
        str(lake.url(LAKE_CUSTOMER)),
        credential={"account_name": LAKE_CUSTOMER, "account_key": LAKE_CUSTOMER_KEY},
    )
    filesystem = lake_service.create_file_system(f"lim{uuid.uuid4().hex[:12]}")
    filesystem.get_file_client("a" * sources.BLOB_NAME_MAX).create_file()
    with pytest.raises(HttpResponseError):
        filesystem.get_file_client("a" * (sources.BLOB_NAME_MAX + 1)).create_file()
    container = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        BACKLOG_CONTAINER
    )
    over = f"probe-{uuid.uuid4().hex}/".ljust(sources.BLOB_NAME_MAX + 1, "a")
    container.upload_blob(over, b"")  # Azure: 400; Azurite: accepted
    container.delete_blob(over)
