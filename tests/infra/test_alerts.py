"""The operators' alerts: every rule has its query and its threshold parameter, explained in the README,
and every metric and dimension a query reads is one telemetry emits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import telemetry
from shared.counters import Counters
from shared.health.check import CheckReport
from shared.health.records import HealthRecord
from shared.model import ExportStatus
from shared.pipeline import BatchReport

INFRA = Path(__file__).resolve().parents[2] / "infra"
ALERTS = INFRA / "alerts"
MODULE = (INFRA / "app" / "alerts.bicep").read_text()
THRESHOLDS = re.findall(r"^param (\w+Threshold) int = \d+$", MODULE, re.MULTILINE)


def test_every_rule_has_its_query_and_every_query_a_rule() -> None:
    """alerts.bicep loads each file of infra/alerts, and only those."""
    loaded = set(re.findall(r"loadTextContent\('\.\./alerts/([\w-]+\.kql)'\)", MODULE))
    assert loaded == {path.name for path in ALERTS.glob("*.kql")}
    assert len(loaded) == 7


def test_every_threshold_is_a_parameter_of_the_deployment_explained_in_the_readme() -> None:
    """An operator sets each threshold at deployment (main.bicep, resources.bicep pass it on) and finds
    what it means in infra/README.md."""
    assert len(THRESHOLDS) == 7
    readme = (INFRA / "README.md").read_text()
    for template in (INFRA / "main.bicep", INFRA / "app" / "resources.bicep"):
        text = template.read_text()
        for name in [*THRESHOLDS, "alertEmail"]:
            assert re.search(rf"^param {name} ", text, re.MULTILINE), (template.name, name)
            assert f"{name}: {name}" in text, (template.name, name)
    for name in THRESHOLDS:
        assert f"`{name}`" in readme, name


def test_every_metric_and_dimension_the_alerts_read_is_emitted(reader: InMemoryMetricReader) -> None:
    """A batch with dead letters and a late write, and a check that postponed an export, overran and
    found a poison queue: telemetry emits every metric the alert queries read, with their dimensions."""
    queries = [path.read_text() for path in ALERTS.glob("*.kql")]
    metrics = {name for text in queries for name in re.findall(r'Name == "(\w+)"', text)} - {
        "export_signals"  # AppRequests: the Functions host's invocations, not a metric
    }
    dimensions = {name for text in queries for name in re.findall(r"Properties\.(\w+)", text)}
    batch = BatchReport("0", received=3, signals=2, dead_lettered=1)
    batch.exports[("p1", "lake")] = Counters(exported=2, exported_bytes=20, writes_ok=1)
    batch.dead_letter_reasons[("p1", "not-json")] = 1
    written = datetime.now(UTC)
    telemetry.record_batch(batch, written_at=written, earliest_enqueued=written - timedelta(seconds=9))
    check = CheckReport(seconds=90.0, period=60.0, checked=1, poisoned=2)
    check.changes.append((("p1", "lake"), ExportStatus.ACTIVE.value, ExportStatus.POSTPONED.value, "x"))
    check.records.append(HealthRecord("p1", "lake", backlog_files=1, backlog_bytes=5, backlog_oldest=1.0))
    telemetry.record_check(check, part="check", now=100.0)
    emitted: dict[str, set[str]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    emitted.setdefault(metric.name, set()).update(dict(point.attributes or {}))
    assert metrics == {
        "replay_poison_messages",
        "signals_dead_lettered",
        "export_state_changes",
        "backlog_oldest_age_seconds",
        "batch_latency_ms",
        "health_check_load",
    }
    assert metrics <= emitted.keys(), metrics - emitted.keys()
    assert dimensions == {"to"} and "to" in emitted["export_state_changes"]
    postponed = re.search(r'Properties\.to\) == "(\w+)"', "".join(queries))
    assert postponed is not None and postponed.group(1) == ExportStatus.POSTPONED.value
