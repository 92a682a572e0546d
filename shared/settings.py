"""App settings, read once from the environment.

Every setting the code reads is named here, with its default, so that the infrastructure and the
README can be checked against one list (see tests/unit/test_settings.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.environment import SettingsError, flag, listing, number
from shared.health import HealthPolicy

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
        )
