"""6. Memory: the peak memory one batch of 1,000 signals of 64 KB takes in `Runtime.exporter.export`,
against the batch's own size, in a fresh process per round (bench/probe.py) on the local stack.

Two exports (ADLS Gen2 hourly and Blob), so each signal is written twice. The peak is measured two
ways: traced (tracemalloc, Python's own allocations while the batch is exported; the batch itself was
allocated before and is not counted) and resident (the process's peak RSS during the export minus its
RSS before, with the peak reset first on Linux).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import Figure, Scale, median, ratios
from bench.stack import Stack, create_export, run_python


def measure(stack: Stack, scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    hub = f"mem{uuid.uuid4().hex[:8]}"
    runtime = stack.runtime(hub)
    project = f"mem-{uuid.uuid4().hex[:8]}"
    place = f"mem{uuid.uuid4().hex[:8]}"
    create_export(runtime, project, "lake", stack.adls(place))
    create_export(runtime, project, "ai", stack.blob(place))
    rounds = []
    for round_ in range(scale.memory_repeats):
        out = run_python(
            [
                "-m",
                "bench.probe",
                "memory",
                project,
                str(round_),  # a partition of its own: a fresh ledger entry and files each round
                "0",
                str(scale.memory_signals),
                str(scale.memory_signal_bytes),
            ],
            stack.environment(hub),
        )
        rounds.append(json.loads(out))
    batch = [r["batch_bytes"] for r in rounds]
    traced = [r["traced_peak"] for r in rounds]
    resident = [r["rss_extra"] for r in rounds]
    traced_ratio = ratios(traced, batch)
    resident_ratio = ratios(resident, batch)
    label = f"{scale.memory_signals} signals of {scale.memory_signal_bytes // 1024} KB"
    figures = [
        Figure("memory.batch_bytes", f"batch: {label}", median(batch) / 1e6, "MB", [b / 1e6 for b in batch]),
        Figure(
            "memory.traced_peak",
            "peak traced (tracemalloc)",
            median(traced) / 1e6,
            "MB",
            [t / 1e6 for t in traced],
            reference="memory.batch_bytes",
            ratio=median(traced_ratio),
        ),
        Figure(
            "memory.rss_peak",
            "peak resident added",
            median(resident) / 1e6,
            "MB",
            [r / 1e6 for r in resident],
            reference="memory.batch_bytes",
            ratio=median(resident_ratio),
            note="2 exports: every signal is written twice",
        ),
        Figure(
            "memory.traced_per_batch",
            "traced peak / batch",
            median(traced_ratio),
            "x",
            traced_ratio,
            reference="memory.batch_bytes",
            ratio=median(traced_ratio),
        ),
        Figure(
            "memory.rss_per_batch",
            "resident peak / batch",
            median(resident_ratio),
            "x",
            resident_ratio,
            reference="memory.batch_bytes",
            ratio=median(resident_ratio),
        ),
    ]
    log(
        f"  memory: batch {median(batch) / 1e6:.1f} MB; traced peak {median(traced) / 1e6:.1f} MB "
        f"(x{median(traced_ratio):.2f}), resident peak +{median(resident) / 1e6:.1f} MB "
        f"(x{median(resident_ratio):.2f})"
    )
    return {"rounds": rounds, "figures": [f.to_json() for f in figures]}
