"""Operator telemetry: OpenTelemetry metrics and structured logs, sent to Azure Monitor when configured.

Off and free unless `APPLICATIONINSIGHTS_CONNECTION_STRING` is set: `configure` then does nothing, and
`azure.monitor.opentelemetry` (about half a second of imports) is never imported. Recording always goes
through the OpenTelemetry metrics API, which is a no-op until a meter provider is installed, so the
bindings call `record_batch` and `record_health` unconditionally.

Metric names and dimensions are the ones the workbook and the saved queries read (infra/queries/*.kql,
table AppMetrics, dimensions in `Properties`); change both together.

| metric | instrument | dimensions | value |
| --- | --- | --- | --- |
| `signals_exported` | counter | project_id, export_id | signals written to the destination |
| `signals_exported_bytes` | counter | project_id, export_id | their bytes (line feeds included) |
| `signals_backlogged` | counter | project_id, export_id | signals sent to the backlog |
| `signals_dropped` | counter | project_id, export_id | signals of a disabled export, not kept |
| `signals_dead_lettered` | counter | reason, project_id (when known) | events that are not signals |
| `export_write_failures` | counter | project_id, export_id, cause | signals whose write failed |
| `export_faults` | counter | project_id, export_id | signals backlogged after an error of the service's own |
| `signals_located` | counter | project_id, export_id, outcome | location option: signals by outcome |
| `batch_latency_ms` | histogram | project_id, export_id | earliest enqueued time of the batch to written |
| `backlog_signals` | histogram | project_id, export_id | signals waiting in the backlog, per check |
| `backlog_bytes` | histogram | project_id, export_id | bytes waiting in the backlog, per check |
| `backlog_oldest_age_seconds` | histogram | project_id, export_id | oldest backlog file's age, per check |

The backlog values are gauges in meaning (the queries read `max(Max)`), recorded as histograms: a
histogram is exported as a delta (only what this health check measured, with its Max), where a
synchronous gauge would be re-exported with its last value forever by whichever instance once ran the
check, stale when the timer has moved to another instance or the export is gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics

from shared.settings import AppSettings, SettingsError

if TYPE_CHECKING:
    from shared.health.records import HealthRecord
    from shared.pipeline import BatchReport

METER_NAME = "signals_export"
LOGGER_NAME = "signals_export"  # the parent of every logger of the code: its records become traces
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"

# Instrumentations left off: they would trace every storage request of every batch (hundreds a second
# at full load) as a dependency, which costs ingestion and hides nothing the metrics above do not show.
_QUIET_INSTRUMENTATIONS = ("azure_sdk", "requests", "urllib", "urllib3", "django", "flask", "psycopg2")

log = logging.getLogger("signals_export.telemetry")

_lock = threading.Lock()  # the instruments and their provider

Monitor = Callable[..., None]
"""azure.monitor.opentelemetry.configure_azure_monitor, or a stand-in with its keyword arguments."""


class Setup:
    """Telemetry's one-time setup in a process: the first `configure` decides, later ones return its
    answer. The Azure Monitor distro and the managed-identity credential are passed in (tests give
    stand-ins); by default they are imported when telemetry is on, and only then (they are costly)."""

    def __init__(
        self, monitor: Monitor | None = None, managed_identity: Callable[..., Any] | None = None
    ) -> None:
        self._monitor = monitor
        self._managed_identity = managed_identity
        self._lock = threading.Lock()
        self._configured: bool | None = None  # None: not run yet; then whether telemetry is on

    def configure(self, env: Mapping[str, str] | None = None) -> bool:
        """Send metrics and the `signals_export` logs to Application Insights, if a connection string
        is set. Returns whether it is on.

        `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` = `ClientId=<client id>;Authorization=AAD`
        authenticates with that user-assigned managed identity (`Authorization=AAD` alone: the
        system-assigned one).
        """
        with self._lock:
            if self._configured is None:
                self._configured = self._start(env)
            return self._configured

    def _start(self, env: Mapping[str, str] | None) -> bool:
        try:
            settings = AppSettings.read(env)
        except SettingsError as error:  # the runtime reports it; telemetry must not stop the app
            log.error("telemetry not configured: %s", error)
            return False
        connection_string = settings.telemetry_connection_string
        if not connection_string:
            return False
        try:
            credential = _credential(settings.telemetry_authentication, self._managed_identity)
            monitor = self._monitor
            if monitor is None:
                from azure.monitor.opentelemetry import configure_azure_monitor  # costly: only when on

                monitor = configure_azure_monitor
            monitor(
                connection_string=connection_string,
                credential=credential,
                logger_name=LOGGER_NAME,
                instrumentation_options={name: {"enabled": False} for name in _QUIET_INSTRUMENTATIONS},
            )
        except Exception as error:  # noqa: BLE001  # telemetry must never stop the exports
            # The type only: the message could quote the connection string.
            log.error("telemetry not configured", extra={"error": type(error).__name__})
            return False
        code_logger = logging.getLogger(LOGGER_NAME)
        if code_logger.level == logging.NOTSET:
            code_logger.setLevel(logging.INFO)
        _reset_instruments()
        log.info("telemetry configured", extra={"entra_auth": credential is not None})
        return True


_process = Setup()


def configure(env: Mapping[str, str] | None = None) -> bool:
    """The process's telemetry (`Setup.configure`), once: function_app.py calls it at import."""
    return _process.configure(env)


def _credential(authentication: str, managed_identity: Callable[..., Any] | None = None) -> Any:
    """The credential an authentication string asks for: a managed identity for `Authorization=AAD`,
    else None (the connection string's instrumentation key alone)."""
    fields = authentication_fields(authentication)
    if fields.get("authorization", "").upper() != "AAD":
        return None
    if managed_identity is None:
        from azure.identity import ManagedIdentityCredential

        managed_identity = ManagedIdentityCredential
    client_id = fields.get("clientid") or None
    return managed_identity(client_id=client_id) if client_id else managed_identity()


def authentication_fields(authentication: str) -> dict[str, str]:
    """`Key=value;Key=value` as a dict with lower-case keys."""
    fields = {}
    for part in authentication.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            fields[key.strip().lower()] = value.strip()
    return fields


# -- instruments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Instruments:
    exported: metrics.Counter
    exported_bytes: metrics.Counter
    backlogged: metrics.Counter
    dropped: metrics.Counter
    dead_lettered: metrics.Counter
    write_failures: metrics.Counter
    faults: metrics.Counter
    located: metrics.Counter
    batch_latency: metrics.Histogram
    backlog_signals: metrics.Histogram
    backlog_bytes: metrics.Histogram
    backlog_oldest_age: metrics.Histogram

    @classmethod
    def of(cls, meter: metrics.Meter) -> _Instruments:
        return cls(
            exported=meter.create_counter(
                "signals_exported", unit="{signal}", description="Signals written to the destination"
            ),
            exported_bytes=meter.create_counter(
                "signals_exported_bytes", unit="By", description="Bytes of signals written"
            ),
            backlogged=meter.create_counter(
                "signals_backlogged", unit="{signal}", description="Signals sent to the backlog"
            ),
            dropped=meter.create_counter(
                "signals_dropped", unit="{signal}", description="Signals of a disabled export, not kept"
            ),
            dead_lettered=meter.create_counter(
                "signals_dead_lettered", unit="{event}", description="Events that are not signals"
            ),
            write_failures=meter.create_counter(
                "export_write_failures", unit="{signal}", description="Signals whose write failed, by cause"
            ),
            faults=meter.create_counter(
                "export_faults",
                unit="{signal}",
                description="Signals kept in the backlog after an error of the service's own",
            ),
            located=meter.create_counter(
                "signals_located",
                unit="{signal}",
                description="Signals of exports that ask for locations, by outcome",
            ),
            batch_latency=meter.create_histogram(
                "batch_latency_ms", unit="ms", description="Earliest enqueued time of a batch to written"
            ),
            backlog_signals=meter.create_histogram(
                "backlog_signals", unit="{signal}", description="Signals waiting in the backlog"
            ),
            backlog_bytes=meter.create_histogram(
                "backlog_bytes", unit="By", description="Bytes waiting in the backlog"
            ),
            backlog_oldest_age=meter.create_histogram(
                "backlog_oldest_age_seconds", unit="s", description="Age of the oldest backlog file"
            ),
        )


_provider: metrics.MeterProvider | None = None
_instruments: _Instruments | None = None


def use_meter_provider(provider: metrics.MeterProvider | None) -> None:
    """Record into this provider instead of the global one (tests: an in-memory reader); None goes
    back to the global provider."""
    global _provider
    with _lock:
        _provider = provider
        _reset_instruments()


def _reset_instruments() -> None:
    global _instruments
    _instruments = None


def _get() -> _Instruments:
    global _instruments
    instruments = _instruments
    if instruments is None:
        with _lock:
            if _instruments is None:
                provider = _provider if _provider is not None else metrics.get_meter_provider()
                meter = provider.get_meter(METER_NAME)
                _instruments = _Instruments.of(meter)
            instruments = _instruments
    return instruments


# -- recording -----------------------------------------------------------------------------------


def record_batch(report: BatchReport, *, written_at: datetime, earliest_enqueued: datetime | None) -> None:
    """Count what one batch did, per export, and its latency: from the earliest enqueued time of its
    events to `written_at`, for each export the batch wrote to. `earliest_enqueued` is None for an
    empty batch."""
    instruments = _get()
    latency_ms = (
        max(0.0, (written_at - earliest_enqueued).total_seconds() * 1000.0)
        if earliest_enqueued is not None
        else None
    )
    for (project_id, export_id), tally in report.exports.items():
        attributes = {"project_id": project_id, "export_id": export_id}
        _add(instruments.exported, tally.exported, attributes)
        _add(instruments.exported_bytes, tally.exported_bytes, attributes)
        _add(instruments.backlogged, tally.backlogged, attributes)
        _add(instruments.dropped, tally.dropped, attributes)
        for cause, signals in sorted(tally.failed.items()):
            _add(instruments.write_failures, signals, {**attributes, "cause": cause})
        _add(instruments.faults, tally.faults, attributes)
        for outcome, signals in sorted(
            getattr(report, "located", {}).get((project_id, export_id), {}).items()
        ):
            _add(instruments.located, signals, {**attributes, "outcome": str(outcome)})
        if latency_ms is not None and tally.writes_ok:
            instruments.batch_latency.record(latency_ms, attributes)
    for (project_id, reason), events in sorted(_dead_letters(report).items()):
        attributes = {"reason": reason, **({"project_id": project_id} if project_id else {})}
        _add(instruments.dead_lettered, events, attributes)


def _dead_letters(report: BatchReport) -> Mapping[tuple[str, str], int]:
    """Dead letters by (project id or "", reason). A report without the breakdown counts them all
    under the reason `unknown`."""
    by_reason: Mapping[tuple[str, str], int] | None = getattr(report, "dead_letter_reasons", None)
    if by_reason is not None:
        return by_reason
    return {("", "unknown"): report.dead_lettered} if report.dead_lettered else {}


def record_health(records: Iterable[HealthRecord], *, now: float) -> None:
    """The backlog of each export as the health check measured it (`now`: the check's clock)."""
    instruments = _get()
    for record in records:
        attributes = {"project_id": record.project_id, "export_id": record.export_id}
        signals: int | None = getattr(record, "backlog_signals", None)
        if signals is not None:
            instruments.backlog_signals.record(signals, attributes)
        instruments.backlog_bytes.record(record.backlog_bytes, attributes)
        age = max(0.0, now - record.backlog_oldest) if record.backlog_oldest else 0.0
        instruments.backlog_oldest_age.record(age, attributes)


def _add(counter: metrics.Counter, value: int, attributes: Mapping[str, str]) -> None:
    if value:
        counter.add(value, attributes)
