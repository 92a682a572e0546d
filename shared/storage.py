"""The service's own storage account: its tables, containers and queues, reached by connection string
(local runs) or by identity (Azure), decided here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient

from shared.settings import Settings


class ServiceStorage:
    """Clients of the service's own storage, created once per process and reused."""

    def __init__(self, settings: Settings, *, request_hook: Callable[[Any], None] | None = None) -> None:
        self._settings = settings
        self._options: dict[str, Any] = {"raw_request_hook": request_hook} if request_hook else {}

    @cached_property
    def _credential(self) -> Any:
        """The app's managed identity (identity-based connections only: imported only then)."""
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self._settings.storage_client_id or None)

    @cached_property
    def tables(self) -> TableServiceClient:
        if self._settings.storage_connection:
            return TableServiceClient.from_connection_string(
                self._settings.storage_connection, **self._options
            )
        return TableServiceClient(
            self._settings.storage_table_uri, credential=self._credential, **self._options
        )

    @cached_property
    def blobs(self) -> BlobServiceClient:
        if self._settings.storage_connection:
            return BlobServiceClient.from_connection_string(
                self._settings.storage_connection, **self._options
            )
        return BlobServiceClient(
            self._settings.storage_blob_uri, credential=self._credential, **self._options
        )

    def table(self, name: str) -> TableClient:
        return self.tables.get_table_client(name)

    def container(self, name: str) -> ContainerClient:
        return self.blobs.get_container_client(name)

    def queue(self, name: str) -> QueueClient:
        if self._settings.storage_connection:
            return QueueClient.from_connection_string(
                self._settings.storage_connection, name, **self._options
            )
        return QueueClient(
            self._settings.storage_queue_uri, name, credential=self._credential, **self._options
        )

    def provision(
        self, *, tables: tuple[str, ...], containers: tuple[str, ...], queues: tuple[str, ...]
    ) -> None:
        """Create what is missing (local runs and tests; in Azure the infrastructure creates them)."""
        for table in tables:
            try:
                self.tables.create_table(table)
            except ResourceExistsError:
                pass
        for container in containers:
            try:
                self.blobs.create_container(container)
            except ResourceExistsError:
                pass
        for queue in queues:
            try:
                self.queue(queue).create_queue()
            except ResourceExistsError:
                pass
