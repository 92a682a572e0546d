"""App settings: every one the service reads, in one model, read once from the environment.

`AppSettings` names each setting (its alias is the app setting's name), with its type, default and
bounds; the infrastructure and the README are checked against it (tests/unit/test_settings.py). It is
read with pydantic-settings' environment parsing, from the process's environment or from a mapping
given by a test or a local host: one path for both. The parts of the service take typed views of it:
`Settings` (the runtime's), the health policy, the API's and the pane's sign-in, telemetry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict
from pydantic_settings.sources import PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from shared.health.rules import HealthPolicy

LOCATION_PATH = "LOCATION_DATABASE_PATH"
LOCATION_BLOB = "LOCATION_DATABASE_BLOB"
STORAGE = "AzureWebJobsStorage"
STORAGE_BLOB_URI = "AzureWebJobsStorage__blobServiceUri"

# Names of the service's own storage resources. Constants, not settings: the infrastructure creates them.
EXPORTS_TABLE = "exports"
LEDGER_TABLE = "exportledger"
HEALTH_TABLE = "exporthealth"
DEADLETTER_CONTAINER = "deadletter"
BACKLOG_CONTAINER = "backlog"
REPLAY_QUEUE = "export-replay"
NOTIFY_QUEUE = "export-notify"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


DEFAULT_STORAGE_SUFFIXES = (".blob.core.windows.net", ".dfs.core.windows.net")


def _comma_separated(value: Any) -> Any:
    """`a, b,` as ("a", "b"): blanks dropped."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _blob_name(value: str) -> str:
    """`<container>/<blob>`: a container name (3-63 lowercase letters, digits, single hyphens) and a
    blob name."""
    container, _, blob = value.partition("/")
    name = re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", container)
    if value and (name is None or not 3 <= len(container) <= 63 or not blob.strip("/")):
        raise ValueError("<container>/<blob name> in the service's storage")
    return value


CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(gt=0)]


class AppSettings(BaseSettings):
    """Every app setting the service reads (the README's Settings table explains each)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # The service's own storage: a connection string, or identity-based service URIs.
    storage_connection: str = Field("", alias="AzureWebJobsStorage")
    storage_blob_uri: str = Field("", alias="AzureWebJobsStorage__blobServiceUri")
    storage_queue_uri: str = Field("", alias="AzureWebJobsStorage__queueServiceUri")
    storage_table_uri: str = Field("", alias="AzureWebJobsStorage__tableServiceUri")
    storage_client_id: str = Field("", alias="AzureWebJobsStorage__clientId")
    key_encryption_key: str = Field("", alias="KEY_ENCRYPTION_KEY")
    # The export path.
    eventhub_name: str = Field("signals", alias="EVENTHUB_NAME")
    consumer_group: str = Field("$Default", alias="EVENTHUB_CONSUMER_GROUP")
    export_cache_seconds: Positive = Field(30.0, alias="EXPORT_CACHE_SECONDS")
    write_deadline_seconds: Positive = Field(20.0, alias="WRITE_DEADLINE_SECONDS")
    write_concurrency: Count = Field(16, alias="WRITE_CONCURRENCY")
    allow_private_webhooks: bool = Field(False, alias="ALLOW_PRIVATE_WEBHOOKS")
    allowed_storage_suffixes: CommaSeparated = Field(
        DEFAULT_STORAGE_SUFFIXES, alias="ALLOWED_STORAGE_SUFFIXES"
    )
    # Health.
    health_window_ticks: Count = Field(5, alias="HEALTH_WINDOW_TICKS")
    health_fatal_min_failures: Count = Field(1, alias="HEALTH_FATAL_MIN_FAILURES")
    health_persistent_ticks: Count = Field(3, alias="HEALTH_PERSISTENT_TICKS")
    health_min_success_rate: Annotated[float, Field(ge=0, le=1)] = Field(0.5, alias="HEALTH_MIN_SUCCESS_RATE")
    backlog_retention_days: Positive = Field(7.0, alias="BACKLOG_RETENTION_DAYS")
    health_probe_seconds: Annotated[float, Field(ge=0)] = Field(60.0, alias="HEALTH_PROBE_SECONDS")
    # Location enrichment: the operator's MaxMind DB, a file or `<container>/<blob>` in the service's
    # storage; at most one. Neither: exports cannot ask for locations.
    location_database_path: str = Field("", alias="LOCATION_DATABASE_PATH")
    location_database_blob: Annotated[str, AfterValidator(_blob_name)] = Field(
        "", alias="LOCATION_DATABASE_BLOB"
    )
    location_check_seconds: Positive = Field(300.0, alias="LOCATION_DATABASE_CHECK_SECONDS")
    # The management API: who may call it (shared.api.config), and the pane's sign-in.
    auth_issuers: CommaSeparated = Field((), alias="AUTH_ISSUER")
    auth_audiences: CommaSeparated = Field((), alias="AUTH_AUDIENCE")
    auth_jwks_uri: str = Field("", alias="AUTH_JWKS_URI")
    auth_jwks: str = Field("", alias="AUTH_JWKS")
    trust_app_service_auth: bool = Field(False, alias="TRUST_APP_SERVICE_AUTH")
    portal_client_id: str = Field("", alias="PORTAL_CLIENT_ID")
    # Telemetry (shared.telemetry).
    telemetry_connection_string: str = Field("", alias="APPLICATIONINSIGHTS_CONNECTION_STRING")
    telemetry_authentication: str = Field("", alias="APPLICATIONINSIGHTS_AUTHENTICATION_STRING")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what `read` hands over: it parses the environment (or a test's mapping) itself."""
        return (init_settings,)

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> AppSettings:
        """The settings in an environment (the process's by default). A value that is empty or only
        blanks (as the portal can leave one) is a missing one. Raises SettingsError naming the setting."""
        given = os.environ if env is None else env
        cleaned = {name: value.strip() for name, value in given.items() if value.strip()}
        try:
            return cls(**_Environment(cls, cleaned)())
        except ValidationError as error:
            raise _settings_error(error, cleaned) from None

    @model_validator(mode="after")
    def _window_holds_the_persistence(self) -> AppSettings:
        """Persistent failures are judged over the window: a longer persistence could never postpone."""
        if self.health_persistent_ticks > self.health_window_ticks:
            raise ValueError(
                "HEALTH_PERSISTENT_TICKS must be at most HEALTH_WINDOW_TICKS (the checks the success rate "
                "covers): persistent failures could never postpone an export"
            )
        return self

    def health(self) -> HealthPolicy:
        return HealthPolicy(
            window_ticks=self.health_window_ticks,
            fatal_min_failures=self.health_fatal_min_failures,
            persistent_ticks=self.health_persistent_ticks,
            min_success_rate=self.health_min_success_rate,
            retention=timedelta(days=self.backlog_retention_days),
            probe_every=timedelta(seconds=self.health_probe_seconds),
        )


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


_QUOTED = {"int", "float", "bool"}  # values quoted in errors: never a secret


def _settings_error(error: ValidationError, env: Mapping[str, str]) -> SettingsError:
    """The first problem, naming the setting; the value quoted only when it cannot be a secret."""
    problem = error.errors(include_url=False)[0]
    if not problem["loc"]:  # a rule between settings: its message names them
        return SettingsError(problem["msg"].removeprefix("Value error, "))
    name = str(problem["loc"][0])
    what = problem["msg"].replace("Input should be", "must be").replace("Value error, ", "must be ")
    field = next((f for f in AppSettings.model_fields.values() if f.alias == name), None)
    quoted = field is not None and (
        getattr(field.annotation, "__name__", "") in _QUOTED or name == LOCATION_BLOB
    )
    value = f", got {env[name]!r}" if quoted and name in env else ""
    return SettingsError(f"{name} {what}{value}")


@dataclass(frozen=True)
class Settings:
    """What the service's runtime is configured with. Built by `from_env`, or directly in tests."""

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
    allowed_storage_suffixes: tuple[str, ...] = DEFAULT_STORAGE_SUFFIXES
    location_database_path: str = ""
    location_database_blob: str = ""
    location_check_seconds: float = 300.0

    @property
    def location_configured(self) -> bool:
        return bool(self.location_database_path or self.location_database_blob)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The runtime's settings from the app settings Azure Functions passes as environment variables."""
        app = AppSettings.read(env)
        if not app.storage_connection and not app.storage_blob_uri:
            raise SettingsError(
                f"{STORAGE} (a connection string) or {STORAGE_BLOB_URI} (identity-based) must be set: "
                "the service keeps its exports, ledger and backlog there"
            )
        if app.location_database_path and app.location_database_blob:
            raise SettingsError(
                f"{LOCATION_PATH} and {LOCATION_BLOB} name the location database twice: set one of them"
            )
        return cls(
            storage_connection=app.storage_connection,
            storage_blob_uri=app.storage_blob_uri,
            storage_queue_uri=app.storage_queue_uri,
            storage_table_uri=app.storage_table_uri,
            storage_client_id=app.storage_client_id,
            key_encryption_key=app.key_encryption_key,
            eventhub_name=app.eventhub_name,
            consumer_group=app.consumer_group,
            export_cache_seconds=app.export_cache_seconds,
            write_deadline_seconds=app.write_deadline_seconds,
            write_concurrency=app.write_concurrency,
            allow_private_webhooks=app.allow_private_webhooks,
            health=app.health(),
            allowed_storage_suffixes=app.allowed_storage_suffixes or DEFAULT_STORAGE_SUFFIXES,
            location_database_path=app.location_database_path,
            location_database_blob=app.location_database_blob,
            location_check_seconds=app.location_check_seconds,
        )
