"""App settings, read once from the environment.

Every setting the code reads is named here, with its default, so that the infrastructure and the
README can be checked against one list (see tests/unit/test_settings.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.environment import SettingsError, flag, listing, number
from shared.health.rules import HealthPolicy

LOCATION_PATH = "LOCATION_DATABASE_PATH"
LOCATION_BLOB = "LOCATION_DATABASE_BLOB"

# Names of the service's own storage resources. Constants, not settings: the infrastructure creates them.
EXPORTS_TABLE = "exports"
LEDGER_TABLE = "exportledger"
HEALTH_TABLE = "exporthealth"
DEADLETTER_CONTAINER = "deadletter"
BACKLOG_CONTAINER = "backlog"
REPLAY_QUEUE = "export-replay"
NOTIFY_QUEUE = "export-notify"


@dataclass(frozen=True)
class Settings:
    """What the pipeline is configured with. Built by `from_env`, or directly in tests."""

    storage_connection: str = ""
    storage_blob_uri: str = ""
    storage_queue_uri: str = ""
    storage_table_uri: str = ""
    storage_client_id: str = ""
    key_encryption_key: str = ""
    eventhub_name: str = "signals"
    consumer_group: str = "$Default"
    export_cache_seconds: float = 30.0
    write_deadline_seconds: float = 20.0
    write_concurrency: int = 16
    allow_private_webhooks: bool = False
    health: HealthPolicy = field(default_factory=HealthPolicy)
    allowed_storage_suffixes: tuple[str, ...] = field(
        default=(
            ".blob.core.windows.net",
            ".dfs.core.windows.net",
        )
    )
    # The operator's MaxMind DB (location enrichment): a file, or `<container>/<blob>` in the service's
    # storage; at most one. Neither: exports cannot ask for locations.
    location_database_path: str = ""
    location_database_blob: str = ""
    location_check_seconds: float = 300.0

    @property
    def location_configured(self) -> bool:
        return bool(self.location_database_path or self.location_database_blob)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings that Azure Functions passes as environment variables."""
        env = os.environ if env is None else env
        connection = env.get("AzureWebJobsStorage", "")
        blob_uri = env.get("AzureWebJobsStorage__blobServiceUri", "")
        if not connection and not blob_uri:
            raise SettingsError(
                "AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__blobServiceUri "
                "(identity-based) must be set: the service keeps its exports, ledger and backlog there"
            )
        suffixes = listing(env, "ALLOWED_STORAGE_SUFFIXES")
        location_path = env.get(LOCATION_PATH, "").strip()
        location_blob = env.get(LOCATION_BLOB, "").strip()
        if location_path and location_blob:
            raise SettingsError(
                f"{LOCATION_PATH} and {LOCATION_BLOB} name the location database twice: set one of them"
            )
        if location_blob and not _blob_name(location_blob):
            raise SettingsError(
                f"{LOCATION_BLOB} must be <container>/<blob name> in the service's storage, "
                f"got {location_blob!r}"
            )
        return cls(
            storage_connection=connection,
            storage_blob_uri=blob_uri,
            storage_queue_uri=env.get("AzureWebJobsStorage__queueServiceUri", ""),
            storage_table_uri=env.get("AzureWebJobsStorage__tableServiceUri", ""),
            storage_client_id=env.get("AzureWebJobsStorage__clientId", ""),
            key_encryption_key=env.get("KEY_ENCRYPTION_KEY", ""),
            eventhub_name=env.get("EVENTHUB_NAME", cls.eventhub_name),
            consumer_group=env.get("EVENTHUB_CONSUMER_GROUP", cls.consumer_group),
            export_cache_seconds=number(env, "EXPORT_CACHE_SECONDS", cls.export_cache_seconds),
            write_deadline_seconds=number(env, "WRITE_DEADLINE_SECONDS", cls.write_deadline_seconds),
            write_concurrency=int(number(env, "WRITE_CONCURRENCY", cls.write_concurrency, whole=True)),
            allow_private_webhooks=flag(env, "ALLOW_PRIVATE_WEBHOOKS"),
            health=HealthPolicy.from_env(env),
            allowed_storage_suffixes=suffixes or Settings().allowed_storage_suffixes,
            location_database_path=location_path,
            location_database_blob=location_blob,
            location_check_seconds=number(env, "LOCATION_DATABASE_CHECK_SECONDS", cls.location_check_seconds),
        )


def _blob_name(value: str) -> bool:
    """`<container>/<blob>`: a container name (3-63 lowercase letters, digits, single hyphens) and a
    blob name."""
    container, _, blob = value.partition("/")
    name = re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", container)
    return name is not None and 3 <= len(container) <= 63 and bool(blob.strip("/"))
