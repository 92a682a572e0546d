"""Telemetry: off and free without a connection string; the metrics the workbook's queries read."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint

from shared import telemetry
from shared.counters import Counters
from shared.health.records import HealthRecord
from shared.pipeline import BatchReport

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ROOT / "infra" / "queries"

Attributes = frozenset[tuple[str, Any]]


# -- reading what was recorded -----------------------------------------------------------------


def metric_points(reader: InMemoryMetricReader) -> dict[str, dict[Attributes, Any]]:
    """Every data point so far, by metric name and attribute set: a counter's sum, or a histogram's
    data point (sum, count, min, max)."""
    found: dict[str, dict[Attributes, Any]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    key = frozenset((point.attributes or {}).items())
                    if isinstance(point, NumberDataPoint):
                        points[key] = point.value
                    elif isinstance(point, HistogramDataPoint):
                        points[key] = point
    return found


def per_export(points: dict[Attributes, Any]) -> dict[tuple[str, str], Any]:
    """A metric's points keyed by (project_id, export_id), for metrics with no other dimension."""
    result = {}
    for attributes, value in points.items():
        found = dict(attributes)
        assert set(found) == {"project_id", "export_id"}, found
        result[(found["project_id"], found["export_id"])] = value
    return result


def by(points: dict[Attributes, Any], *names: str) -> dict[tuple[str, ...], Any]:
    """A metric's points keyed by the values of the given dimensions."""
    return {tuple(dict(attributes).get(name, "") for name in names): v for attributes, v in points.items()}


@pytest.fixture
def fresh() -> Iterator[None]:
    """The code's logger level is put back after a test that configured telemetry."""
    code_logger = logging.getLogger("signals_export")
    level = code_logger.level
    yield
    code_logger.setLevel(level)


# -- configure -----------------------------------------------------------------------------------


def test_configure_without_a_connection_string_does_nothing_and_imports_nothing_heavy() -> None:
    """Off and free: no exporter, no SDK, and not even an import of the Azure Monitor distro."""
    script = textwrap.dedent(
        """
        import sys
        import shared.telemetry as telemetry
        from datetime import UTC, datetime
        from shared.pipeline import BatchReport
        assert telemetry.configure({}) is False
        assert telemetry.configure({"APPLICATIONINSIGHTS_CONNECTION_STRING": "  "}) is False
        report = BatchReport("0", received=1, signals=1)
        report.exports[("p", "e")].exported = 1
        telemetry.record_batch(report, written_at=datetime.now(UTC), earliest_enqueued=datetime.now(UTC))
        heavy = sorted(
            name for name in sys.modules
            if name.startswith(("azure.monitor", "opentelemetry.sdk", "opentelemetry.instrumentation"))
        )
        print(",".join(heavy))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported without a connection string: {done.stdout.strip()}"


def test_configure_with_a_connection_string_and_aad_uses_the_managed_identity(fresh: None) -> None:
    """ClientId=...;Authorization=AAD: a ManagedIdentityCredential for that client id; logger signals_export."""
    calls: list[dict[str, Any]] = []
    setup = telemetry.Setup(
        monitor=lambda **kwargs: calls.append(kwargs), managed_identity=FakeManagedIdentity
    )
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD",
    }
    assert setup.configure(env) is True
    assert setup.configure(env) is True  # idempotent
    (call,) = calls
    assert call["connection_string"] == env["APPLICATIONINSIGHTS_CONNECTION_STRING"]
    assert call["logger_name"] == "signals_export"
    assert isinstance(call["credential"], FakeManagedIdentity)
    assert call["credential"].kwargs == {"client_id": "11111111-2222-3333-4444-555555555555"}
    assert call["instrumentation_options"]["azure_sdk"] == {"enabled": False}


def test_aad_without_a_client_id_uses_the_system_assigned_identity(fresh: None) -> None:
    """Authorization=AAD alone: the system-assigned identity (no client id)."""
    calls: list[dict[str, Any]] = []
    setup = telemetry.Setup(
        monitor=lambda **kwargs: calls.append(kwargs), managed_identity=FakeManagedIdentity
    )
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD",
    }
    assert setup.configure(env) is True
    assert calls[0]["credential"].kwargs == {}


class FakeManagedIdentity:
    """Stands in for azure.identity.ManagedIdentityCredential: keeps what it was built with."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def test_configure_without_aad_sends_no_credential(fresh: None) -> None:
    """A connection string alone: the instrumentation key authenticates (local auth on)."""
    calls: list[dict[str, Any]] = []
    setup = telemetry.Setup(monitor=lambda **kwargs: calls.append(kwargs))
    assert setup.configure({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}) is True
    assert calls[0]["credential"] is None


def test_the_authentication_string_is_read_case_insensitively() -> None:
    assert telemetry.authentication_fields("clientid=abc ; AUTHORIZATION=aad;") == {
        "clientid": "abc",
        "authorization": "aad",
    }
    assert telemetry.authentication_fields("") == {}


# -- recording -----------------------------------------------------------------------------------


def a_report() -> BatchReport:
    report = BatchReport("3", received=12, signals=10, dead_lettered=2)
    report.exports[("p1", "lake")] = Counters(exported=6, exported_bytes=600, writes_ok=2)
    failing = Counters(backlogged=4, writes_failed=1)
    failing.failed.update({"authentication-failed": 4})
    report.exports[("p1", "ai")] = failing
    report.exports[("p2", "off")] = Counters(dropped=3)
    if hasattr(report, "dead_letter_reasons"):
        report.dead_letter_reasons.update({("p1", "not-json"): 1, ("", "missing-project"): 1})
    return report


def test_a_batch_is_counted_per_export_with_failures_by_cause_and_latency(
    reader: InMemoryMetricReader,
) -> None:
    """Exported, bytes, backlogged, dropped and failures per export; latency for exports written to."""
    enqueued = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    telemetry.record_batch(
        a_report(), written_at=enqueued + timedelta(milliseconds=1500), earliest_enqueued=enqueued
    )
    points = metric_points(reader)
    assert per_export(points["signals_exported"]) == {("p1", "lake"): 6}
    assert per_export(points["signals_exported_bytes"]) == {("p1", "lake"): 600}
    assert per_export(points["signals_backlogged"]) == {("p1", "ai"): 4}
    assert per_export(points["signals_dropped"]) == {("p2", "off"): 3}
    assert by(points["export_write_failures"], "project_id", "export_id", "cause") == {
        ("p1", "ai", "authentication-failed"): 4
    }
    latency = per_export(points["batch_latency_ms"])
    assert set(latency) == {("p1", "lake")}
    assert (latency[("p1", "lake")].count, latency[("p1", "lake")].max) == (1, 1500.0)


@dataclass
class TotalsOnly:
    """A batch report with the dead-letter total only (no `dead_letter_reasons`)."""

    partition: str
    dead_lettered: int
    exports: dict[tuple[str, str], Counters] = field(default_factory=dict)


def test_dead_letters_without_a_breakdown_count_as_reason_unknown(reader: InMemoryMetricReader) -> None:
    """A report that only has the total still counts every dead letter, under reason `unknown`."""
    telemetry.record_batch(TotalsOnly("0", 2), written_at=datetime.now(UTC), earliest_enqueued=None)  # type: ignore[arg-type]
    assert by(metric_points(reader)["signals_dead_lettered"], "reason") == {("unknown",): 2}


def test_dead_letters_are_counted_by_reason_and_project(reader: InMemoryMetricReader) -> None:
    report = a_report()
    if not hasattr(report, "dead_letter_reasons"):
        pytest.fail(
            "BatchReport has no dead_letter_reasons: the pipeline does not say why events were dead-lettered"
        )
    telemetry.record_batch(report, written_at=datetime.now(UTC), earliest_enqueued=None)
    assert by(metric_points(reader)["signals_dead_lettered"], "reason", "project_id") == {
        ("not-json", "p1"): 1,
        ("missing-project", ""): 1,
    }


def test_the_backlog_of_each_export_is_recorded_by_the_health_check(reader: InMemoryMetricReader) -> None:
    """Bytes and the oldest file's age per export; an empty backlog is recorded as zero."""
    now = 1_800_000_000.0
    waiting = HealthRecord("p1", "ai", backlog_files=2, backlog_bytes=4096, backlog_oldest=now - 90)
    empty = HealthRecord("p1", "lake")
    telemetry.record_health([waiting, empty], now=now)
    points = metric_points(reader)
    assert {k: v.max for k, v in per_export(points["backlog_bytes"]).items()} == {
        ("p1", "ai"): 4096,
        ("p1", "lake"): 0,
    }
    assert {k: v.max for k, v in per_export(points["backlog_oldest_age_seconds"]).items()} == {
        ("p1", "ai"): 90.0,
        ("p1", "lake"): 0.0,
    }


def test_recording_without_a_provider_costs_nothing_and_does_not_fail() -> None:
    """No provider configured: the API's no-op instruments take every measurement."""
    telemetry.use_meter_provider(None)
    telemetry.record_batch(a_report(), written_at=datetime.now(UTC), earliest_enqueued=datetime.now(UTC))
    telemetry.record_health([HealthRecord("p", "e", backlog_bytes=1, backlog_oldest=1.0)], now=2.0)


# -- the names the infrastructure's queries read -------------------------------------------------


def query_metric_names() -> set[str]:
    """Every metric name the saved queries and the workbook look for in AppMetrics."""
    names: set[str] = set()
    for query in QUERIES.glob("*.kql"):
        text = query.read_text()
        names |= set(re.findall(r'Name\s*==\s*"([^"]+)"', text))
        for group in re.findall(r"Name\s+in\s*\(([^)]*)\)", text):
            names |= set(re.findall(r'"([^"]+)"', group))
    return names


def query_dimensions() -> set[str]:
    return {
        name
        for query in QUERIES.glob("*.kql")
        for name in re.findall(r"Properties\.(\w+)", query.read_text())
    }


def test_every_metric_and_dimension_the_queries_read_is_emitted(reader: InMemoryMetricReader) -> None:
    """infra/queries/*.kql read these names and dimensions: telemetry emits each of them."""
    wanted = query_metric_names()
    assert {"signals_exported", "batch_latency_ms", "backlog_oldest_age_seconds"} <= wanted, wanted
    enqueued = datetime.now(UTC) - timedelta(seconds=2)
    report = a_report()
    telemetry.record_batch(report, written_at=datetime.now(UTC), earliest_enqueued=enqueued)
    record = HealthRecord("p1", "ai", backlog_files=1, backlog_bytes=10, backlog_oldest=1.0)
    if not hasattr(record, "backlog_signals"):
        record.backlog_signals = 4  # type: ignore[attr-defined]
    telemetry.record_health([record], now=100.0)
    points = metric_points(reader)
    assert wanted - set(points) == set(), "metrics the queries read that telemetry does not emit"
    dimensions = {name for metric in points.values() for attributes in metric for name, _ in attributes}
    assert query_dimensions() - dimensions == set()
    for name in wanted - {"signals_dead_lettered"}:
        for attributes in points[name]:
            assert {"project_id", "export_id"} <= dict(attributes).keys(), name


def test_counts_add_up_over_batches(reader: InMemoryMetricReader) -> None:
    """Counters are sums: two batches of the same export add."""
    for _ in range(2):
        telemetry.record_batch(a_report(), written_at=datetime.now(UTC), earliest_enqueued=None)
    points = metric_points(reader)
    assert per_export(points["signals_exported"]) == {("p1", "lake"): 12}
    assert "batch_latency_ms" not in points or not points["batch_latency_ms"]
    assert Counter(per_export(points["signals_backlogged"])) == Counter({("p1", "ai"): 8})


def test_a_connection_string_the_distro_refuses_leaves_telemetry_off(
    fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Telemetry never stops the app: a failure to configure is logged (without the connection
    string) and the exports run without it."""

    def refuse(**kwargs: Any) -> None:
        raise ValueError(f"Invalid connection string {kwargs['connection_string']}")

    setup = telemetry.Setup(monitor=refuse)
    assert setup.configure({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=secretish"}) is False
    assert setup.configure({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}) is False
    assert [r.getMessage() for r in caplog.records] == ["telemetry not configured"]
    assert all("secretish" not in repr(vars(r)) for r in caplog.records)
