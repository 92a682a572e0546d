"""Fixtures for the export path: customers' exports on local storage, and reading back what landed."""

from __future__ import annotations

import base64
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.filedatalake import DataLakeServiceClient, FileSystemClient

from devstack.adls_emulator import AdlsEmulator, Fault
from devstack.azurite import Azurite
from devstack.queue_runner import QueueRunner
from shared.model import AdlsDestination, BlobDestination, Export, Granularity, Secret
from shared.replay import ReplayFiles
from shared.runtime import Runtime, runtime, use_runtime
from tests.conftest import BLOB_CUSTOMER, BLOB_CUSTOMER_KEY, LAKE_CUSTOMER, LAKE_CUSTOMER_KEY
from tests.support import Producer, Sent, registered, signal, trigger_batch

pytestmark = pytest.mark.integration


@dataclass
class Customer:
    """The customer's side: their storage accounts, read with the SDKs like the customer would."""

    lake: Any
    azurite: Azurite

    @property
    def lake_url(self) -> str:
        return str(self.lake.url(LAKE_CUSTOMER))

    @property
    def blob_url(self) -> str:
        return self.azurite.url("blob", BLOB_CUSTOMER)

    def adls(self, filesystem: str, directory: str, *, key: str = LAKE_CUSTOMER_KEY) -> AdlsDestination:
        return AdlsDestination(self.lake_url, filesystem, directory, Secret(key))

    def blob(self, container: str, *, key: str = BLOB_CUSTOMER_KEY) -> BlobDestination:
        return BlobDestination(self.blob_url, container, Secret(key))

    def lake_files(self, filesystem: str) -> dict[str, list[bytes]]:
        """Every file in a filesystem and its lines."""
        service = DataLakeServiceClient(
            self.lake_url, credential={"account_name": LAKE_CUSTOMER, "account_key": LAKE_CUSTOMER_KEY}
        )
        return files_in(service.get_file_system_client(filesystem))

    def blobs(self, container: str) -> dict[str, list[bytes]]:
        """Every blob in a container and its lines."""
        service = BlobServiceClient(
            self.blob_url, credential={"account_name": BLOB_CUSTOMER, "account_key": BLOB_CUSTOMER_KEY}
        )
        return blobs_in(service.get_container_client(container))


def files_in(fs: FileSystemClient) -> dict[str, list[bytes]]:
    """Every file in a filesystem and its lines, each file ending with a whole line."""
    files = {}
    for path in fs.get_paths(recursive=True):
        if not path.is_directory:
            data = fs.get_file_client(path.name).download_file().readall()
            assert data == b"" or data.endswith(b"\n"), f"{path.name} ends mid-line"
            files[path.name] = data.splitlines()
    return files


def blobs_in(client: ContainerClient) -> dict[str, list[bytes]]:
    """Every blob in a container and its lines, each blob ending with a whole line."""
    result = {}
    for blob in client.list_blobs():
        data = client.download_blob(blob.name).readall()
        assert data.endswith(b"\n"), f"{blob.name} ends mid-line"
        result[blob.name] = data.splitlines()
    return result


@pytest.fixture
def customer(lake: Any, azurite: Azurite) -> Customer:
    return Customer(lake, azurite)


@pytest.fixture
def create_export(service: Runtime) -> Callable[..., Export]:
    """Configure an export the way the management API will: stored, destination prepared."""

    def create(
        project: str,
        export_id: str,
        destination: AdlsDestination | BlobDestination,
        *,
        signals: Sequence[str] | None = None,
        granularity: Granularity = Granularity.HOUR,
    ) -> Export:
        export = Export(
            project,
            export_id,
            destination,
            None if signals is None else frozenset(signals),
            granularity,
            generation=secrets.token_hex(8),  # as the API does: tells it from an earlier one of the id
        )
        service.destinations.prepare(destination)
        service.exports.put(export)
        service.registry.invalidate()
        return export

    return create


def counts(files: dict[str, list[bytes]]) -> Counter[tuple[str, bytes]]:
    return Counter((path, line) for path, lines in files.items() for line in lines)


@dataclass
class Traffic:
    """Sends signals through the registered Event Hub function, one partition, and keeps what was sent."""

    project: str
    partition: str = "0"
    producer: Producer = field(default_factory=lambda: Producer(datetime.now(UTC) - timedelta(minutes=5)))
    sent: list[Sent] = field(default_factory=list)

    def send(
        self,
        count: int,
        *,
        names: Sequence[str] = ("click", "view"),
        after: timedelta = timedelta(milliseconds=10),
    ) -> list[Sent]:
        """Send `count` signals, `after` apart in enqueued time, through the registered function."""
        batch = [
            self.producer.send(*signal(self.project, names[i % len(names)], len(self.sent) + i), after=after)
            for i in range(count)
        ]
        registered("export_signals")(trigger_batch(self.partition, batch))
        self.sent.extend(batch)
        return batch

    def lines(self, sent: Sequence[Sent] | None = None) -> Counter[bytes]:
        return Counter(event.body for event in (self.sent if sent is None else sent))


@pytest.fixture
def traffic(project: str) -> Traffic:
    return Traffic(project)


def all_lines(files: dict[str, list[bytes]]) -> Counter[bytes]:
    """Every line in a set of files, whatever the file."""
    return Counter(line for lines in files.values() for line in lines)


def run_health_check() -> None:
    """The timer function, as registered, then the work items it shared out (`export-health`), as any
    instance's `check_health_range` would take them: no item is left open for a later check to wait on."""
    registered("check_health")(None)
    service = runtime()
    QueueRunner(
        service.health_queue, service.queue("export-health-poison"), registered("check_health_range")
    ).drain()


REGENERATED_KEY = base64.b64encode(b"a regenerated key for the account").decode()


@contextmanager
def regenerated_key(lake: AdlsEmulator) -> Iterator[str]:
    """The customer regenerated the lake account's key: exports holding the old one fail."""
    lake.set_account_key(LAKE_CUSTOMER, REGENERATED_KEY)
    try:
        yield REGENERATED_KEY
    finally:
        lake.set_account_key(LAKE_CUSTOMER, LAKE_CUSTOMER_KEY)


class WriteThenDie(ReplayFiles):
    """Replay files whose instance dies right after one is written: the file is there, the backlog
    not yet marked as replayed."""

    def create(self, export: Export, path: str, body: bytes, ends: dict[str, int]) -> dict[str, int]:
        super().create(export, path, body, ends)
        raise ConnectionResetError("instance died")


class DiesAfterAReplayWrite(Runtime):
    """Another instance of the service, whose replay dies after writing a replay file."""

    @cached_property
    def replay_files(self) -> ReplayFiles:
        return WriteThenDie(self.destinations)


@contextmanager
def instance(runtime: Runtime, then: Runtime) -> Iterator[Runtime]:
    """The registered functions run on another instance of the service, then on `then` again."""
    use_runtime(runtime)
    try:
        yield runtime
    finally:
        use_runtime(then)


@contextmanager
def server_busy(lake: AdlsEmulator, filesystem: str) -> Iterator[None]:
    """The lake account answers appends in a filesystem with 503 ServerBusy (its request rate limit)."""
    fault = lake.add_fault(
        Fault(
            status=503,
            code="ServerBusy",
            message="Busy",
            operations={"append"},
            account=LAKE_CUSTOMER,
            path_prefix=filesystem,
        )
    )
    try:
        yield
    finally:
        lake.remove_fault(fault)
