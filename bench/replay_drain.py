"""4. Replay: how fast a backlog drains, against the live export of the same signals on the same storage.

Each round, the same signals (1 KB, four names, batches of 512 over four partitions) go
- live: through `Runtime.exporter.export` to an active ADLS Gen2 export (timed), and
- to a postponed ADLS Gen2 export, so into its backlog (timed too: the backlog write rate); then
  `shared.replay.resume` enqueues the backlog's work items and `devstack.queue_runner.QueueRunner`
  feeds them to `function_app`'s registered `replay_backlog` until the queue is empty (the drain,
  timed). Both destinations are read back afterwards: every signal exactly once.
The two run in turn, which one first alternating round by round.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Figure, Scale, Template, event_batch, median, ratios
from bench.stack import Stack, create_export, registered
from devstack.queue_runner import QueueRunner
from shared.model import ExportStatus
from shared.pipeline import EventBatch
from shared.runtime import Runtime, use_runtime

PARTITIONS = ("0", "1", "2", "3")
SIGNAL_BYTES = 1024
BATCH = 512


def measure(stack: Stack, scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    runtime = stack.runtime()
    use_runtime(runtime)  # the registered function reads the process's Runtime
    template = Template(SIGNAL_BYTES)
    payloads = [template.make(i) for i in range(scale.replay_signals)]
    samples: dict[str, list[float]] = {"drain": [], "live": [], "backlog": [], "resume": []}
    rounds = []
    try:
        handler = registered("replay_backlog")
        for round_ in range(scale.replay_repeats):
            result = _round(stack, runtime, handler, payloads, live_first=round_ % 2 == 0)
            rounds.append(result)
            for name in samples:
                samples[name].append(result[name])
            log(
                f"  replay: drain {result['drain']:,.0f} signals/s ({result['items']} items), live "
                f"{result['live']:,.0f} signals/s, to backlog {result['backlog']:,.0f} signals/s"
            )
    finally:
        use_runtime(None)
    drain_vs_live = ratios(samples["drain"], samples["live"])
    figures = [
        Figure(
            "replay.drain_rate",
            "backlog drain (replay_backlog)",
            median(samples["drain"]),
            "signals/s",
            samples["drain"],
            reference="replay.live_rate",
            ratio=median(drain_vs_live),
            note=f"{scale.replay_signals} signals of 1 KB, ADLS Gen2",
        ),
        Figure(
            "replay.live_rate",
            "live export, same signals",
            median(samples["live"]),
            "signals/s",
            samples["live"],
        ),
        Figure(
            "replay.drain_vs_live",
            "drain / live",
            median(drain_vs_live),
            "x",
            drain_vs_live,
            reference="replay.live_rate",
            ratio=median(drain_vs_live),
        ),
        Figure(
            "replay.backlog_rate",
            "written to the backlog",
            median(samples["backlog"]),
            "signals/s",
            samples["backlog"],
        ),
        Figure(
            "replay.resume_seconds",
            "resume (probe, enqueue)",
            median(samples["resume"]),
            "s",
            samples["resume"],
        ),
    ]
    return {
        "signals": scale.replay_signals,
        "signal_bytes": SIGNAL_BYTES,
        "partitions": len(PARTITIONS),
        "rounds": rounds,
        "figures": [f.to_json() for f in figures],
    }


def _batches(project: str, payloads: list[bytes]) -> list[EventBatch]:
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    per = {p: payloads[i :: len(PARTITIONS)] for i, p in enumerate(PARTITIONS)}
    batches = []
    for partition, mine in per.items():
        for first in range(0, len(mine), BATCH):
            batches.append(
                event_batch(
                    partition, project, mine[first : first + BATCH], first, start, timedelta(milliseconds=1)
                )
            )
    return batches


def _round(
    stack: Stack, runtime: Runtime, handler: Callable[..., Any], payloads: list[bytes], *, live_first: bool
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    live_export = create_export(runtime, f"live-{tag}", "lake", stack.adls(f"live{tag}"))
    held_export = create_export(runtime, f"held-{tag}", "lake", stack.adls(f"held{tag}"))
    runtime.exports.set_status(
        held_export.project_id, held_export.export_id, ExportStatus.POSTPONED, cause="transient"
    )
    runtime.registry.invalidate()
    result: dict[str, Any] = {}

    def live() -> None:
        batches = _batches(live_export.project_id, payloads)
        start = time.perf_counter()
        for batch in batches:
            runtime.exporter.export(batch)
        result["live"] = len(payloads) / (time.perf_counter() - start)

    def replayed() -> None:
        batches = _batches(held_export.project_id, payloads)
        start = time.perf_counter()
        for batch in batches:
            report = runtime.exporter.export(batch)
            if sum(t.backlogged for t in report.exports.values()) != len(batch.events):
                raise RuntimeError("the postponed export did not keep the batch in its backlog")
        result["backlog"] = len(payloads) / (time.perf_counter() - start)
        start = time.perf_counter()
        items = runtime.resumer.resume(held_export).work_items
        result["resume"] = time.perf_counter() - start
        runner = QueueRunner(runtime.replay_queue, runtime.poison_queue, handler)
        start = time.perf_counter()
        runner.drain()
        result["drain"] = len(payloads) / (time.perf_counter() - start)
        result["items"] = items
        if runner.failures:
            raise RuntimeError(f"replay failed: {runner.failures[0]!r}")

    for step in (live, replayed) if live_first else (replayed, live):
        step()
    expected = Counter(payloads)
    for name, export in (("live", live_export), ("replayed", held_export)):
        if stack.lines(export.destination) != expected:
            raise RuntimeError(f"the {name} destination does not hold every signal exactly once")
    result["verified"] = True
    return result
