"""Telemetry of real batches on local storage: the counters say what the batch did, and no log holds a key."""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from devstack.adls_emulator import AdlsEmulator
from devstack.azurite import KEY as SERVICE_ACCOUNT_KEY
from devstack.azurite import Azurite
from shared import telemetry
from shared.eventhub import batch_from_trigger
from shared.model import Export, ExportStatus
from shared.pipeline import BatchReport
from shared.runtime import Runtime
from shared.settings import BACKLOG_CONTAINER
from tests.conftest import BLOB_CUSTOMER_KEY, LAKE_CUSTOMER_KEY, SERVICE_KEY
from tests.integration.conftest import (
    REGENERATED_KEY,
    Customer,
    Traffic,
    regenerated_key,
    run_health_check,
    server_busy,
)
from tests.support import Producer, Sent, registered, signal, trigger_batch
from tests.unit.test_telemetry import by, metric_points, per_export

pytestmark = pytest.mark.integration


BAD = [
    (b'{"name":"broken"', "not-json"),
    (b'{"name":"caf\xe9"}', "not-utf8"),
    (b'[{"name":"list"}]', "not-object"),
    (b'{"value":3}', "missing-name"),
]


def export_batch(service: Runtime, partition: str, sent: list[Sent]) -> BatchReport:
    """What export_signals does with a trigger batch, then its telemetry, as the binding will call it."""
    batch = batch_from_trigger(trigger_batch(partition, sent))
    report = service.exporter.export(batch)
    telemetry.record_batch(
        report,
        written_at=datetime.now(UTC),
        earliest_enqueued=min(event.enqueued for event in batch.events) if batch.events else None,
    )
    return report


def traffic_of(producer: Producer, project: str, other: str) -> list[Sent]:
    """Signals of two projects and names, and one bad event of each kind."""
    sent = []
    names = ["click", "view", "purchase", "error"]
    for index in range(30):
        body, props = signal(project if index % 3 else other, names[index % 4], index, pad="y" * index)
        sent.append(producer.send(body, props))
        if index % 7 == 0 and index // 7 < len(BAD):
            sent.append(producer.send(BAD[index // 7][0], {"projectId": project}))
    sent.append(producer.send(b'{"name":"orphan"}', {}))
    return sent


def expected_reason(event: Sent) -> str | None:
    if not event.properties.get("projectId"):
        return "missing-project"
    return dict(BAD).get(event.body)


def wanted(export: Export, sent: list[Sent]) -> list[bytes]:
    """The lines an export should receive from a batch, computed without the product's code."""
    lines = []
    for event in sent:
        if expected_reason(event) is not None or event.properties["projectId"] != export.project_id:
            continue
        if export.signals is None or json.loads(event.body)["name"] in export.signals:
            lines.append(event.body)
    return lines


def test_a_batch_is_counted_per_export_as_it_was_written(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    project: str,
    reader: InMemoryMetricReader,
) -> None:
    """signals_exported and bytes per export match the destination; dropped for a disabled export;
    batch_latency_ms runs from the earliest enqueued time to the write."""
    other = project + "-b"
    fs = f"fs{project[-8:]}"
    lake = create_export(project, "lake", customer.adls(fs, "out"))
    blob = create_export(project, "ai", customer.blob(f"ai{project[-8:]}"), signals=["click"])
    beta = create_export(other, "lake", customer.adls(fs, "beta"))
    off = create_export(project, "off", customer.adls(fs, "off"), signals=["view"])
    service.exports.set_status(project, "off", ExportStatus.DISABLED)
    service.registry.invalidate()
    producer = Producer(datetime.now(UTC) - timedelta(seconds=30))
    sent = traffic_of(producer, project, other)

    before = datetime.now(UTC)
    report = export_batch(service, "0", sent)
    after = datetime.now(UTC)

    points = metric_points(reader)
    exported = per_export(points["signals_exported"])
    assert exported == {export.key: len(wanted(export, sent)) for export in (lake, blob, beta)}
    assert per_export(points["signals_exported_bytes"]) == {
        export.key: sum(len(line) + 1 for line in wanted(export, sent)) for export in (lake, blob, beta)
    }
    assert sorted(line for lines in customer.lake_files(fs).values() for line in lines) == sorted(
        wanted(lake, sent) + wanted(beta, sent)
    )
    assert per_export(points["signals_dropped"]) == {off.key: len(wanted(off, sent))}
    assert "signals_backlogged" not in points and "export_write_failures" not in points
    latency = per_export(points["batch_latency_ms"])
    assert set(latency) == {lake.key, blob.key, beta.key}
    earliest = min(event.enqueued for event in sent)
    for point in latency.values():
        assert point.count == 1
        assert (
            (before - earliest).total_seconds() * 1000
            <= point.max
            <= (after - earliest).total_seconds() * 1000
        )
    assert sum(by(points["signals_dead_lettered"], "reason").values()) == report.dead_lettered == 5


def test_dead_letters_are_counted_by_reason(
    service: Runtime, project: str, reader: InMemoryMetricReader
) -> None:
    """signals_dead_lettered has the dimension reason (and project_id when the event has one)."""
    producer = Producer(datetime.now(UTC) - timedelta(seconds=30))
    sent = traffic_of(producer, project, project + "-b")
    export_batch(service, "1", sent)
    recorded = by(metric_points(reader)["signals_dead_lettered"], "reason", "project_id")
    expected = Counter(
        (reason, str(event.properties.get("projectId", "")))
        for event in sent
        if (reason := expected_reason(event)) is not None
    )
    assert recorded == dict(expected)


def test_write_failures_are_counted_by_cause_in_signals(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    reader: InMemoryMetricReader,
) -> None:
    """A wrong key: authentication-failed; ServerBusy: throttled. Each failed signal is backlogged."""
    fs = f"fs{traffic.project[-8:]}"
    keyed = create_export(traffic.project, "keyed", customer.adls(fs, "keyed"))
    busy_fs = f"busy{traffic.project[-8:]}"
    busy = create_export(traffic.project, "busy", customer.adls(busy_fs, ""), signals=["view"])
    producer = Producer(datetime.now(UTC) - timedelta(seconds=30))
    sent = [producer.send(*signal(traffic.project, ("click", "view")[i % 2], i)) for i in range(8)]
    with server_busy(lake, busy_fs):
        first = export_batch(service, "0", sent[:4])
    with regenerated_key(lake):
        second = export_batch(service, "0", sent[4:])
    points = metric_points(reader)
    failures = by(points["export_write_failures"], "export_id", "cause")
    assert failures == {
        ("busy", "throttled"): 2,
        ("busy", "authentication-failed"): 2,
        ("keyed", "authentication-failed"): 4,
    }
    reported: Counter[tuple[str, str]] = Counter()
    for report in (first, second):
        for (_, export_id), tally in report.exports.items():
            reported.update({(export_id, cause): n for cause, n in tally.failed.items()})
    assert failures == dict(reported)
    assert per_export(points["signals_exported"]) == {keyed.key: 4}
    assert per_export(points["signals_backlogged"]) == {keyed.key: 4, busy.key: 4}


def test_the_health_check_records_each_exports_backlog(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    azurite: Azurite,
    reader: InMemoryMetricReader,
) -> None:
    """backlog_bytes and backlog_oldest_age_seconds per export, as the health check measured them."""
    fs = f"fs{traffic.project[-8:]}"
    held = create_export(traffic.project, "held", customer.adls(fs, "held"))
    clean = create_export(traffic.project, "clean", customer.blob(f"ai{traffic.project[-8:]}"))
    with regenerated_key(lake):
        traffic.send(6)
    run_health_check()
    now = service.clock()
    telemetry.record_health(service.health_records.all().values(), now=now)
    points = metric_points(reader)
    container = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        BACKLOG_CONTAINER
    )
    blobs = list(container.list_blobs(name_starts_with=f"{traffic.project}/held/"))
    assert blobs
    sizes = per_export(points["backlog_bytes"])
    assert sizes[held.key].max == sum(b.size for b in blobs)
    assert sizes[clean.key].max == 0
    ages = per_export(points["backlog_oldest_age_seconds"])
    oldest = min((b.creation_time or b.last_modified) for b in blobs).timestamp()
    assert ages[held.key].max == pytest.approx(now - oldest, abs=1.0)
    assert ages[clean.key].max == 0


def test_the_health_check_records_the_signals_waiting_in_each_backlog(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    reader: InMemoryMetricReader,
) -> None:
    """backlog_signals (what the workbook's backlog chart and health table read) per export."""
    fs = f"fs{traffic.project[-8:]}"
    held = create_export(traffic.project, "held", customer.adls(fs, "held"))
    with regenerated_key(lake):
        traffic.send(6)
        traffic.send(3)
    run_health_check()
    telemetry.record_health(service.health_records.all().values(), now=service.clock())
    points = metric_points(reader)
    assert "backlog_signals" in points, "the health record does not measure the signals in the backlog"
    assert per_export(points["backlog_signals"])[held.key].max == 9


def test_no_log_record_of_a_batch_or_a_health_check_holds_a_key(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Successful writes, failed writes, dead letters and the health check log ids and causes, never a
    storage key (the customer's, the service's, or the key-encryption key)."""
    fs = f"fs{traffic.project[-8:]}"
    create_export(traffic.project, "lake", customer.adls(fs, "out"))
    create_export(traffic.project, "ai", customer.blob(f"ai{traffic.project[-8:]}"))
    caplog.set_level(logging.DEBUG)
    traffic.send(5)
    with regenerated_key(lake):
        traffic.send(5)
        run_health_check()
    bad = Producer(datetime.now(UTC), first_sequence=1000)
    registered("export_signals")(trigger_batch("0", [bad.send(b"not json", {"projectId": traffic.project})]))

    secrets = {
        "customer lake key": LAKE_CUSTOMER_KEY,
        "regenerated key": REGENERATED_KEY,
        "customer blob key": BLOB_CUSTOMER_KEY,
        "service account key": SERVICE_ACCOUNT_KEY,
        "key-encryption key": SERVICE_KEY,
    }
    forms = {
        f"{label} ({form})": value
        for label, key in secrets.items()
        for form, value in (("base64", key), ("raw", base64.b64decode(key).decode("latin-1")))
    }
    assert len(caplog.records) > 5
    for record in caplog.records:
        text = render(record)
        leaked = [label for label, value in forms.items() if value in text]
        assert not leaked, f"{record.name}: {record.getMessage()!r} holds {leaked}"
    failures = [r for r in caplog.records if r.getMessage().startswith("write failed")]
    assert failures, "the failed writes were logged"
    for record in failures:
        assert (record.project_id, record.export_id, record.cause) == (  # type: ignore[attr-defined]
            traffic.project,
            "lake",
            "authentication-failed",
        )


def render(record: logging.LogRecord) -> str:
    """Everything a handler could send of a record: message, extra fields, exception and stack."""
    parts: list[Any] = [record.getMessage()]
    parts.extend(f"{name}={value!r}" for name, value in vars(record).items())
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(str(part) for part in parts)
