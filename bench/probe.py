"""What the cold-start and memory measurements run in a fresh process: `python -m bench.probe KIND ...`.

Prints one JSON object. The app settings come from the environment, as in a Functions process.

- `first-call PROJECT PARTITION SEQUENCE`: import `function_app`, then call the registered
  `export_signals` twice on a small batch (10 signals of 1 KB): the first invocation, and a warm one.
- `memory PROJECT PARTITION SEQUENCE COUNT SIZE`: export a batch of COUNT signals of SIZE bytes with
  `Runtime.exporter`, after a warm-up batch; the peak memory it takes, traced (tracemalloc: Python's
  allocations) and resident (the process's peak RSS, reset before the batch where Linux allows).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def first_call(project: str, partition: str, sequence: int) -> dict[str, Any]:
    start = time.perf_counter()
    import function_app  # noqa: F401  (what the worker does first)

    imported = time.perf_counter() - start
    from bench.common import Template
    from bench.stack import Sent, registered, trigger_events

    export_signals = registered("export_signals")
    template = Template(1024)
    now = datetime.now(UTC)

    def events(first: int) -> Any:
        sent = [Sent(template.make(first + i), project, first + i, now) for i in range(10)]
        return trigger_events(partition, sent)

    first_batch, second_batch = events(sequence), events(sequence + 10)
    start = time.perf_counter()
    export_signals(first_batch)
    first = time.perf_counter() - start
    start = time.perf_counter()
    export_signals(second_batch)
    warm = time.perf_counter() - start
    return {"import": imported, "first": first, "warm": warm}


def _status(field: str) -> int | None:
    """A `VmXXX:` field of /proc/self/status, in bytes (None where there is no such file)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the peak RSS (Linux: `echo 5 > /proc/self/clear_refs`)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory(project: str, partition: str, sequence: int, count: int, size: int) -> dict[str, Any]:
    from bench.common import Template, event_batch
    from shared.runtime import Runtime
    from shared.settings import Settings

    runtime = Runtime(Settings.from_env())
    exporter = runtime.exporter
    template = Template(size)
    now = datetime.now(UTC)
    warm = event_batch(partition, project, [template.make(i) for i in range(4)], sequence, now)
    exporter.export(warm)  # clients connected, files created, ledger loaded
    payloads = [template.make(i) for i in range(count)]
    batch = event_batch(partition, project, payloads, sequence + 4, now)
    batch_bytes = sum(len(p) for p in payloads)
    gc.collect()
    rss_before = _status("VmRSS") or 0
    reset = _reset_peak()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    start = time.perf_counter()
    report = exporter.export(batch)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    hwm = _status("VmHWM") if reset else None
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if any(t.writes_failed for t in report.exports.values()):
        raise RuntimeError("a write failed during the memory measurement")
    rss_peak = hwm if hwm is not None else peak_after
    return {
        "batch_bytes": batch_bytes,
        "signals": count,
        "traced_peak": traced_peak,
        "rss_before": rss_before,
        "rss_peak": rss_peak,
        "rss_extra": max(0, rss_peak - rss_before),
        "peak_reset": reset,
        "peak_before_unreset": peak_before,
        "seconds": seconds,
        "exports": len(report.exports),
    }


def main(argv: list[str]) -> int:
    kind, *args = argv
    if kind == "first-call":
        result = first_call(args[0], args[1], int(args[2]))
    elif kind == "memory":
        result = memory(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    else:
        raise SystemExit(f"unknown probe {kind!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
