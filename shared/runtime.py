"""The composition root: the one place that builds the service's parts from the settings, once per
process, and wires each with what it uses. Nothing else reaches in here: every part receives its
dependencies, and the bindings (function_app.py) and the local host take the parts they call.

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

from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient
from fastapi import FastAPI

from shared import settings as names
from shared.api import create_api
from shared.api.operations import ApiServices
from shared.cleanup import ExportCleanup
from shared.deadletter import DeadLetters
from shared.destinations import AppendBlobSink, DestinationClients
from shared.exports import ExportRegistry, Exports
from shared.fanout import Fanout
from shared.health.check import HealthCheck
from shared.health.records import HealthRecords
from shared.health.view import HealthView
from shared.ledger import PartitionLedger, partition_key
from shared.location import Locator
from shared.notify import Notifier, Webhooks
from shared.pipeline import Exporter
from shared.replay import Replayer, ReplayFiles, ReplayQueue
from shared.resume import Resumer
from shared.secrets import KeyBox
from shared.settings import Settings, SettingsError
from shared.storage import ServiceStorage

if TYPE_CHECKING:
    from shared.geo import GeoDatabase


@dataclass
class Runtime:
    """The service's parts, wired from one Settings. Each part is a property built on first use, so
    an instance with one part of its own (a test's faulty one) is a subclass that overrides it."""

    settings: Settings
    request_hook: Callable[[Any], None] | None = None  # sees every storage request (counting)
    clock: Callable[[], float] = time.time  # the health check's, the replay's and the counters' clock
    _ledgers: dict[str, PartitionLedger] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        """The clock as the parts read it: a test may set `clock` after the parts were built."""
        return self.clock()

    # -- the service's own storage

    @cached_property
    def storage(self) -> ServiceStorage:
        return ServiceStorage(self.settings, request_hook=self.request_hook)

    @property
    def tables(self) -> TableServiceClient:
        return self.storage.tables

    @property
    def blobs(self) -> BlobServiceClient:
        return self.storage.blobs

    def queue(self, name: str) -> QueueClient:
        return self.storage.queue(name)

    @cached_property
    def exports_table(self) -> TableClient:
        return self.storage.table(names.EXPORTS_TABLE)

    @cached_property
    def ledger_table(self) -> TableClient:
        return self.storage.table(names.LEDGER_TABLE)

    @cached_property
    def health_table(self) -> TableClient:
        return self.storage.table(names.HEALTH_TABLE)

    @cached_property
    def backlog_container(self) -> ContainerClient:
        return self.storage.container(names.BACKLOG_CONTAINER)

    @cached_property
    def deadletter_container(self) -> ContainerClient:
        return self.storage.container(names.DEADLETTER_CONTAINER)

    @cached_property
    def replay_queue(self) -> QueueClient:
        return self.storage.queue(names.REPLAY_QUEUE)

    @cached_property
    def poison_queue(self) -> QueueClient:
        """Where the Functions host moves replay items that failed `maxDequeueCount` times."""
        return self.storage.queue(f"{names.REPLAY_QUEUE}-poison")

    @cached_property
    def notify_queue(self) -> QueueClient:
        """Webhook notifications the health check leaves for the queue function `notify_webhook`."""
        return self.storage.queue(names.NOTIFY_QUEUE)

    def provision(self) -> None:
        """Create the service's own tables, containers and queues if missing (local runs and tests)."""
        self.storage.provision(
            tables=(names.EXPORTS_TABLE, names.LEDGER_TABLE, names.HEALTH_TABLE),
            containers=(names.BACKLOG_CONTAINER, names.DEADLETTER_CONTAINER),
            queues=(names.REPLAY_QUEUE, names.NOTIFY_QUEUE),
        )

    # -- exports and destinations

    @cached_property
    def keys(self) -> KeyBox:
        if not self.settings.key_encryption_key:
            raise SettingsError(
                "KEY_ENCRYPTION_KEY must be set: customers' storage keys are stored sealed under it"
            )
        return KeyBox.from_setting(self.settings.key_encryption_key)

    @cached_property
    def exports(self) -> Exports:
        return Exports(self.exports_table, self.keys, clock=self.now)

    @cached_property
    def registry(self) -> ExportRegistry:
        return ExportRegistry(self.exports.list, max_age=self.settings.export_cache_seconds)

    @cached_property
    def destinations(self) -> DestinationClients:
        return DestinationClients({"raw_request_hook": self.request_hook} if self.request_hook else {})

    # -- the export path

    @cached_property
    def exporter(self) -> Exporter:
        return Exporter(
            exports_of=self.registry.exports_of,
            ledger_for=self.ledger,
            sink_for=lambda destination: self.destinations.sink(destination),
            backlog=AppendBlobSink(self.backlog_container),
            dead_letters=DeadLetters(self.deadletter_container, self.settings.eventhub_name),
            write_deadline=self.settings.write_deadline_seconds,
            writers=Fanout(self.settings.write_concurrency, "export-write"),
            clock=self.now,
            locator=self.locator,
        )

    def ledger(self, partition: str) -> PartitionLedger:
        """The ledger of a partition, kept for the process's life (its cache is the instance's)."""
        with self._lock:
            ledger = self._ledgers.get(partition)
            if ledger is None:
                key = partition_key(self.settings.eventhub_name, partition)
                ledger = self._ledgers[partition] = PartitionLedger(self.ledger_table, key)
            return ledger

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

    # -- health, resume and replay

    @cached_property
    def health_records(self) -> HealthRecords:
        return HealthRecords(self.health_table)

    @cached_property
    def replays(self) -> ReplayQueue:
        return ReplayQueue(
            queue=self.replay_queue, poison=self.poison_queue, backlog=self.backlog_container, clock=self.now
        )

    @cached_property
    def replay_files(self) -> ReplayFiles:
        return ReplayFiles(self.destinations)

    @cached_property
    def replayer(self) -> Replayer:
        return Replayer(
            exports=self.exports,
            backlog=self.backlog_container,
            ledger_table=self.ledger_table,
            destinations=self.destinations,
            files=self.replay_files,
            queue=self.replay_queue,
            notes=self.health_records,
            hub=self.settings.eventhub_name,
            clock=self.now,
        )

    @cached_property
    def resumer(self) -> Resumer:
        return Resumer(
            exports=self.exports,
            destinations=self.destinations,
            replays=self.replays,
            records=self.health_records,
            changed=self.registry.invalidate,
            clock=self.now,
        )

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(self.notify_queue)

    @cached_property
    def webhooks(self) -> Webhooks:
        return Webhooks(self.exports, allow_private=self.settings.allow_private_webhooks)

    @cached_property
    def health_check(self) -> HealthCheck:
        return HealthCheck(
            store=self.exports,
            ledger_table=self.ledger_table,
            records=self.health_records,
            backlog=self.backlog_container,
            probe=self.destinations.probe,
            notifier=self.notifier,
            policy=self.settings.health,
            replays=self.replays,
            clock=self.now,
        )

    @cached_property
    def health_view(self) -> HealthView:
        return HealthView(
            exports=self.exports,
            records=self.health_records,
            ledger_table=self.ledger_table,
            replays=self.replays,
            clock=self.now,
        )

    @cached_property
    def cleanup(self) -> ExportCleanup:
        return ExportCleanup(
            records=self.health_records, ledger_table=self.ledger_table, backlog=self.backlog_container
        )

    # -- the management API

    @cached_property
    def api(self) -> ApiServices:
        return ApiServices(
            exports=self.exports,
            destinations=self.destinations,
            resumer=self.resumer,
            health=self.health_view,
            cleanup=self.cleanup,
            changed=self.registry.invalidate,
            allowed_storage_suffixes=self.settings.allowed_storage_suffixes,
            allow_private_webhooks=self.settings.allow_private_webhooks,
            location_configured=self.settings.location_configured,
        )


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


def management_api() -> FastAPI:
    """The management API on the process's Runtime (`uvicorn --factory shared.runtime:management_api`)."""
    return create_api(lambda: runtime().api)
