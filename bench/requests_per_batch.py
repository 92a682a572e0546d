"""2. Storage requests per batch, counted at the storage endpoints.

Real batches (512 signals of 1 KB, one partition each) go through `Runtime.exporter` against Azurite
and the ADLS Gen2 emulator. Data requests are counted at the emulator (its request log) and, for the
Blob destination, by a `RequestCounter` on the Runtime (the SDKs' `raw_request_hook`); bookkeeping is
every request to Table Storage (ledger, and the export registry when its cache is cold).

One project with four exports: ADLS hourly (every signal), ADLS hourly (half the names), ADLS daily,
and Blob (the Application Insights layout, a file per signal name and minute). A partition's first
batch creates its files (one more request per file); the batches after it are the steady state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from bench.common import SELECTED, Figure, Scale, bodies, event_batch, median, ratios
from bench.stack import LAKE_CUSTOMER, Stack, create_export
from shared.model import Granularity

SIGNAL_BYTES = 1024
PARTITIONS = ("0", "1")


def measure(stack: Stack, scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    first: list[dict[str, int]] = []
    steady: list[dict[str, int]] = []
    for _ in range(scale.request_repeats):
        batches = _run(stack, scale)
        for index, batch in enumerate(batches):
            (first if index < len(PARTITIONS) else steady).append(batch)
    figures = [
        _ratio(
            "requests.data_per_file",
            "data requests / files touched (steady)",
            steady,
            "data",
            "files",
            "floor: 1 per file",
        ),
        _ratio(
            "requests.data_per_file_first",
            "data requests / files touched (first batch)",
            first,
            "data",
            "files",
            "floor: 1 per file, +1 per new file",
        ),
        _ratio(
            "requests.bookkeeping_per_data",
            "table requests / data requests (steady)",
            steady,
            "table",
            "data",
            "reference: the data requests",
        ),
        _ratio(
            "requests.bookkeeping_per_data_first",
            "table requests / data requests (first batch)",
            first,
            "table",
            "data",
            "reference: the data requests",
        ),
        Figure(
            "requests.files_per_batch",
            "files touched per batch",
            median([b["files"] for b in steady]),
            "files",
            [b["files"] for b in steady],
        ),
        Figure(
            "requests.data_per_batch",
            "data requests per batch (steady)",
            median([b["data"] for b in steady]),
            "requests",
            [b["data"] for b in steady],
        ),
        Figure(
            "requests.table_per_batch",
            "table requests per batch (steady)",
            median([b["table"] for b in steady]),
            "requests",
            [b["table"] for b in steady],
        ),
    ]
    for figure in figures:
        log(f"  requests: {figure.label}: {figure.value:g}")
    return {
        "signals_per_batch": scale.cpu_batch_events,
        "signal_bytes": SIGNAL_BYTES,
        "exports": 4,
        "first_batches": first,
        "steady_batches": steady,
        "figures": [f.to_json() for f in figures],
    }


def _ratio(id_: str, label: str, batches: list[dict[str, int]], top: str, bottom: str, note: str) -> Figure:
    values = ratios([b[top] for b in batches], [b[bottom] for b in batches])
    return Figure(id_, label, median(values), "x", values, reference=bottom, ratio=median(values), note=note)


def _run(stack: Stack, scale: Scale) -> list[dict[str, int]]:
    """One round: a fresh hub (ledger) and project; the first batch of each partition, then steady
    batches in turn. The counts of each batch."""
    runtime = stack.runtime(counted=True)
    project = f"req-{uuid.uuid4().hex[:8]}"
    place = f"req{uuid.uuid4().hex[:8]}"
    create_export(runtime, project, "lake-all", stack.adls(place, "all"))
    create_export(runtime, project, "lake-some", stack.adls(place, "some"), signals=sorted(SELECTED))
    create_export(runtime, project, "lake-day", stack.adls(place, "day"), granularity=Granularity.DAY)
    create_export(runtime, project, "ai", stack.blob(place))
    payloads = bodies(scale.cpu_batch_events, SIGNAL_BYTES)
    sequences = dict.fromkeys(PARTITIONS, 0)
    counted = []
    for index in range(len(PARTITIONS) + scale.request_batches):
        partition = PARTITIONS[index % len(PARTITIONS)]
        batch = event_batch(partition, project, payloads, sequences[partition])
        sequences[partition] += len(payloads)
        stack.counter.reset()
        stack.lake.reset_requests()
        report = runtime.exporter.export(batch)
        lake = [r for r in stack.lake.requests() if r["account"] == LAKE_CUSTOMER]
        counts = dict(stack.counter.counts)
        files = sum(t.writes_ok + t.writes_failed for t in report.exports.values())
        if any(t.writes_failed or t.backlogged for t in report.exports.values()):
            raise RuntimeError("a write failed while counting requests: the counts would not be comparable")
        counted.append(
            {
                "files": files,
                "data": len(lake) + counts.get("customer-blob", 0),
                "lake": len(lake),
                "lake_seen_by_hook": counts.get("lake", 0),
                "blob": counts.get("customer-blob", 0),
                "table": counts.get("table", 0),
                "service_blob": counts.get("service-blob", 0),
                "creates": sum(1 for r in lake if r["operation"] == "create"),
            }
        )
    return counted
