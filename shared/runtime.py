"""The process's clients and services, built once from the settings and shared by every function.

Built lazily on first use (not at import, so that an import costs no network), and never in the ASGI
lifespan, which the Functions adapter only runs on the first HTTP request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient

from shared import settings as names
from shared.deadletter import DeadLetters
from shared.environment import SettingsError
from shared.fanout import Fanout
from shared.ledger import PartitionLedger, partition_key
from shared.location import Locator
from shared.monitor import HealthMonitor, HealthRecords
from shared.notify import Notifier, Webhooks
from shared.pipeline import Exporter
from shared.secrets import KeyBox
from shared.settings import Settings
from shared.sinks import AppendBlobSink, DestinationClients

if TYPE_CHECKING:
    from shared.geo import GeoDatabase
from shared.exports import ExportRegistry, Exports


@dataclass
class Runtime:
    """Everything a function needs, wired from one Settings."""

    settings: Settings
    request_hook: Callable[[Any], None] | None = None  # sees every storage request (counting)
    clock: Callable[[], float] = time.time  # the health check's and the counters' clock
    _ledgers: dict[str, PartitionLedger] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def _credential(self) -> Any:
        from azure.identity import DefaultAzureCredential  # only for identity-based connections

        client_id = self.settings.storage_client_id or None
        return DefaultAzureCredential(managed_identity_client_id=client_id)

    @property
    def _hooks(self) -> dict[str, Any]:
        return {"raw_request_hook": self.request_hook} if self.request_hook else {}

    @cached_property
    def tables(self) -> TableServiceClient:
        if self.settings.storage_connection:
            return TableServiceClient.from_connection_string(self.settings.storage_connection, **self._hooks)
        return TableServiceClient(self.settings.storage_table_uri, credential=self._credential, **self._hooks)

    @cached_property
    def blobs(self) -> BlobServiceClient:
        if self.settings.storage_connection:
            return BlobServiceClient.from_connection_string(self.settings.storage_connection, **self._hooks)
        return BlobServiceClient(self.settings.storage_blob_uri, credential=self._credential, **self._hooks)

    @cached_property
    def keys(self) -> KeyBox:
        if not self.settings.key_encryption_key:
            raise SettingsError(
                "KEY_ENCRYPTION_KEY must be set: customers' storage keys are stored sealed under it"
            )
        return KeyBox.from_setting(self.settings.key_encryption_key)

    @cached_property
    def exports_table(self) -> TableClient:
        return self.tables.get_table_client(names.EXPORTS_TABLE)

    @cached_property
    def ledger_table(self) -> TableClient:
        return self.tables.get_table_client(names.LEDGER_TABLE)

    @cached_property
    def health_table(self) -> TableClient:
        return self.tables.get_table_client(names.HEALTH_TABLE)

    @cached_property
    def health_records(self) -> HealthRecords:
        return HealthRecords(self.health_table)

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(self.notify_queue)

    @cached_property
    def webhooks(self) -> Webhooks:
        return Webhooks(self.exports, allow_private=self.settings.allow_private_webhooks)

    @cached_property
    def monitor(self) -> HealthMonitor:
        from shared.replay import resume_replay, tend_backlog  # the monitor starts replays

        return HealthMonitor(
            store=self.exports,
            ledger_table=self.ledger_table,
            records=self.health_records,
            backlog=self.backlog_container,
            probe=self.destinations.probe,
            notifier=self.notifier,
            policy=self.settings.health,
            on_resume=lambda export: resume_replay(self, export),
            on_backlog=lambda export: tend_backlog(self, export),
            clock=lambda: self.clock(),
        )

    def queue(self, name: str) -> QueueClient:
        """A client of one of the service's queues."""
        if self.settings.storage_connection:
            return QueueClient.from_connection_string(self.settings.storage_connection, name, **self._hooks)
        return QueueClient(self.settings.storage_queue_uri, name, credential=self._credential, **self._hooks)

    @cached_property
    def replay_queue(self) -> QueueClient:
        return self.queue(names.REPLAY_QUEUE)

    @cached_property
    def poison_queue(self) -> QueueClient:
        """Where the Functions host moves replay items that failed `maxDequeueCount` times."""
        return self.queue(f"{names.REPLAY_QUEUE}-poison")

    @cached_property
    def notify_queue(self) -> QueueClient:
        """Webhook notifications the health check leaves for the queue function `notify_webhook`."""
        return self.queue(names.NOTIFY_QUEUE)

    @cached_property
    def exports(self) -> Exports:
        return Exports(self.exports_table, self.keys, clock=lambda: self.clock())

    @cached_property
    def registry(self) -> ExportRegistry:
        return ExportRegistry(self.exports.list, max_age=self.settings.export_cache_seconds)

    @cached_property
    def destinations(self) -> DestinationClients:
        return DestinationClients(self._hooks)

    @cached_property
    def backlog_container(self) -> ContainerClient:
        return self.blobs.get_container_client(names.BACKLOG_CONTAINER)

    @cached_property
    def deadletter_container(self) -> ContainerClient:
        return self.blobs.get_container_client(names.DEADLETTER_CONTAINER)

    @cached_property
    def exporter(self) -> Exporter:
        return Exporter(
            exports_of=self.registry.exports_of,
            ledger_for=self.ledger,
            sink_for=self.destinations.sink,
            backlog=AppendBlobSink(self.backlog_container),
            dead_letters=DeadLetters(self.deadletter_container, self.settings.eventhub_name),
            write_deadline=self.settings.write_deadline_seconds,
            writers=Fanout(self.settings.write_concurrency, "export-write"),
            clock=lambda: self.clock(),
            locator=self.locator,
        )

    @cached_property
    def geo(self) -> GeoDatabase | None:
        """The operator's location database, when the settings name one (imported only then)."""
        if not self.settings.location_configured:
            return None
        from shared.geo import location_database

        return location_database(self.settings, lambda: self.blobs)

    def locator(self) -> Locator:
        """What a batch locates addresses with: the database's current version, or none."""
        return self.geo.locator() if self.geo is not None else Locator(None)

    def ledger(self, partition: str) -> PartitionLedger:
        with self._lock:
            ledger = self._ledgers.get(partition)
            if ledger is None:
                key = partition_key(self.settings.eventhub_name, partition)
                ledger = self._ledgers[partition] = PartitionLedger(self.ledger_table, key)
            return ledger

    def provision(self) -> None:
        """Create the service's own tables and containers if missing (local runs and tests; in Azure
        the infrastructure creates them)."""
        for table in (names.EXPORTS_TABLE, names.LEDGER_TABLE, names.HEALTH_TABLE):
            try:
                self.tables.create_table(table)
            except ResourceExistsError:
                pass
        for container in (names.BACKLOG_CONTAINER, names.DEADLETTER_CONTAINER):
            try:
                self.blobs.create_container(container)
            except ResourceExistsError:
                pass
        for queue in (self.replay_queue, self.notify_queue):
            try:
                queue.create_queue()
            except ResourceExistsError:
                pass


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """The process's Runtime, from the environment's settings."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(Settings.from_env())
        return _runtime


def use_runtime(value: Runtime | None) -> None:
    """Install a Runtime (the local host and tests build theirs from explicit settings)."""
    global _runtime
    with _runtime_lock:
        _runtime = value
