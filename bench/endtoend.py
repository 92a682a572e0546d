"""3. End to end on the local stack: the highest steady rate the pipeline keeps up with, every signal
verified in the destinations, and the latency from send to readable.

The local host (devstack/host.py) is not used: this drives `Runtime.exporter.export` directly. A
producer thread puts signals (1 KB, four names) on four partitions at a target rate, each with its
partition's next sequence number and the time as its enqueued time. Partitions are cut into batches
as host.json says (`maxEventBatchSize` 512, `minEventBatchSize` 64, `maxWaitTime` 5 s), each batch
goes through the worker's own converter (`EventHubTriggerConverter`) and
`shared.eventhub.batch_from_trigger`, and one worker thread exports the batches one at a time (a
Python worker runs one invocation at a time unless PYTHON_THREADPOOL_THREAD_COUNT says otherwise;
the exporter writes a batch's files in parallel). The rate steps up until the unsent signals at the
end of a step exceed one full batch per partition (the backlog grows); the highest rate kept is then
held for the whole hold time and must be kept again.

Latency: a poller reads the ADLS Gen2 export's files every 100 ms and notes when each signal of the
hold becomes readable (so it is measured to within the poll interval). Afterwards every file of both
destinations is read back: each line must be a signal that was sent, byte for byte, and every signal
sent must be there exactly once in each.

Its reference, in the same run, pair by pair: the same batches back to back through the same
pipeline on the local stack (saturated) and with storage that does no I/O (the CPU-bound rate).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.filedatalake import FileSystemClient

from bench.common import Figure, Scale, Template, median, quantile, ratios
from bench.cpu import MemorySink, memory_exporter
from bench.stack import Sent, Stack, create_export, trigger_events
from shared.eventhub import batch_from_trigger
from shared.fanout import Fanout
from shared.layout import file_for
from shared.model import AdlsDestination, BlobDestination, Export
from shared.pipeline import Exporter
from shared.runtime import Runtime

PARTITIONS = ("0", "1", "2", "3")
SIGNAL_BYTES = 1024
MAX_BATCH = 512  # host.json extensions.eventHubs
MIN_BATCH = 64
MAX_WAIT = 5.0
POLL_SECONDS = 0.1
METHOD = "Runtime.exporter.export driven directly, one worker thread (devstack/host.py not used)"


@dataclass
class Partition:
    id: str
    pending: deque[tuple[Sent, float]] = field(default_factory=deque)  # (event, monotonic send time)
    next_sequence: int = 0


class Pipeline:
    """The producer, the batch cutting and the worker: signals from send to `Exporter.export`."""

    def __init__(self, exporter: Exporter, project: str, hub: str, template: Template) -> None:
        self.exporter = exporter
        self.project = project
        self.hub = hub
        self.template = template
        self.partitions = [Partition(p) for p in PARTITIONS]
        self.sent_at: list[float] = []  # monotonic send time, by signal id
        self.export_seconds: list[float] = []
        self.decode_seconds: list[float] = []  # the worker's converter and batch_from_trigger
        self.failures = 0
        self.batches = 0
        self._rate = 0.0
        self._stop = threading.Event()
        self._busy = False
        self._worker = threading.Thread(target=self._work, name="bench-worker", daemon=True)
        self._worker.start()
        self.error: BaseException | None = None

    # -- producer ---------------------------------------------------------------------------

    def produce(self, rate: float, seconds: float) -> None:
        """Send at `rate` signals/s for `seconds` (in ticks of 5 ms), round robin over partitions."""
        start = time.monotonic()
        done = 0
        while True:
            now = time.monotonic()
            elapsed = now - start
            if elapsed >= seconds:
                break
            due = int(rate * elapsed) - done
            if due > 0:
                enqueued = datetime.now(UTC)
                for _ in range(due):
                    index = len(self.sent_at)
                    partition = self.partitions[index % len(self.partitions)]
                    event = Sent(self.template.make(index), self.project, partition.next_sequence, enqueued)
                    partition.next_sequence += 1
                    self.sent_at.append(now)
                    partition.pending.append((event, now))
                done += due
            time.sleep(0.005)

    def unsent(self) -> int:
        return sum(len(p.pending) for p in self.partitions)

    def drain(self, timeout: float) -> bool:
        """Wait until every signal sent is exported (the worker cuts what is left at once)."""
        deadline = time.monotonic() + timeout
        self._draining = True
        try:
            while time.monotonic() < deadline:
                if self.error:
                    raise self.error
                if self.unsent() == 0 and not self._busy:
                    return True
                time.sleep(0.01)
            return False
        finally:
            self._draining = False

    def stop(self) -> None:
        self._stop.set()
        self._worker.join(timeout=60)

    # -- worker -----------------------------------------------------------------------------

    _draining = False

    def _ready(self, partition: Partition, now: float) -> bool:
        waiting = len(partition.pending)
        if not waiting:
            return False
        return waiting >= MIN_BATCH or self._draining or now - partition.pending[0][1] >= MAX_WAIT

    def _work(self) -> None:
        turn = 0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                chosen = None
                for offset in range(len(self.partitions)):
                    partition = self.partitions[(turn + offset) % len(self.partitions)]
                    if self._ready(partition, now):
                        chosen = partition
                        turn = (turn + offset + 1) % len(self.partitions)
                        break
                if chosen is None:
                    time.sleep(0.002)
                    continue
                self._busy = True
                cut = [chosen.pending.popleft()[0] for _ in range(min(MAX_BATCH, len(chosen.pending)))]
                start = time.perf_counter()
                batch = batch_from_trigger(trigger_events(chosen.id, cut, self.hub))
                decoded = time.perf_counter()
                report = self.exporter.export(batch)
                self.decode_seconds.append(decoded - start)
                self.export_seconds.append(time.perf_counter() - decoded)
                self.batches += 1
                self.failures += sum(t.writes_failed for t in report.exports.values())
                self._busy = False
        except BaseException as error:  # noqa: BLE001 - any failure of the worker is reported by drain()
            self.error = error
            self._busy = False


class Poller:
    """Notes when each signal of the ADLS export becomes readable in its destination file."""

    def __init__(self, filesystem: FileSystemClient, export: Export, pipeline: Pipeline) -> None:
        self.filesystem = filesystem
        self.export = export
        self.pipeline = pipeline
        self.readable_at: dict[int, float] = {}
        self.lengths: dict[str, int] = {}
        self.watch: tuple[int, int] = (0, 0)  # ids [first, last) whose time to readable is noted
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-poller", daemon=True)
        self._thread.start()

    def _paths(self) -> set[str]:
        now = datetime.now(UTC)
        return {
            file_for(self.export, "", moment, partition).path
            for partition in PARTITIONS
            for moment in (now, now - timedelta(seconds=15))
        }

    def poll(self) -> None:
        for path in self._paths():
            client = self.filesystem.get_file_client(path)
            try:
                size = int(client.get_file_properties().size)
            except ResourceNotFoundError:  # not created yet
                continue
            known = self.lengths.get(path, 0)
            if size <= known:
                continue
            data = client.download_file(offset=known, length=size - known).readall()
            now = time.monotonic()
            complete = data[: data.rfind(b"\n") + 1]
            self.lengths[path] = known + len(complete)
            first, last = self.watch
            for line in complete.splitlines():
                index = Template.id_of(line)
                if first <= index < last:
                    self.readable_at.setdefault(index, now)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception as error:  # noqa: BLE001 - a poll that fails is retried at the next tick
                self.errors.append(repr(error))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def measure(stack: Stack, scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    template = Template(SIGNAL_BYTES)
    runtime = stack.runtime()
    saturated = _saturation(stack, runtime, scale, template, log)
    project = f"e2e-{uuid.uuid4().hex[:8]}"
    place = f"e2e{uuid.uuid4().hex[:8]}"
    lake = create_export(runtime, project, "lake", stack.adls(place, "signals"))
    blob = create_export(runtime, project, "ai", stack.blob(place))
    pipeline = Pipeline(runtime.exporter, project, runtime.settings.eventhub_name, template)
    poller = Poller(stack.lake_service().get_file_system_client(place), lake, pipeline)
    steps: list[dict[str, Any]] = []
    try:
        rate = max(200.0, 0.4 * saturated["real"])
        best = 0.0
        for _ in range(scale.e2e_steps):
            kept = _step(pipeline, rate, scale.e2e_step_seconds, steps, log)
            if kept:
                best = rate
                if rate > 1.5 * saturated["real"]:
                    break
                rate *= 1.25
            elif best:
                break
            else:
                rate *= 0.6
        best = best or max(100.0, 0.2 * saturated["real"])  # nothing kept: hold lower than any step
        held = None
        for _ in range(3):
            first = len(pipeline.sent_at)
            poller.watch = (first, first + 10**12)
            exports_before = len(pipeline.export_seconds)
            kept = _step(pipeline, best, scale.e2e_hold_seconds, steps, log, hold=True)
            last = len(pipeline.sent_at)
            poller.watch = (first, last)
            if kept:
                held = (first, last, exports_before)
                break
            best *= 0.7
        if not pipeline.drain(120):
            raise RuntimeError("the pipeline did not drain in 120 s")
        poller_deadline = time.monotonic() + 30
        while held and time.monotonic() < poller_deadline:
            if len(poller.readable_at) >= held[1] - held[0]:
                break
            time.sleep(POLL_SECONDS)
    finally:
        poller.stop()
        pipeline.stop()
    if held is None:
        raise RuntimeError("no rate was kept for the hold time")
    total = len(pipeline.sent_at)
    verified = {
        kind: _verify(stack, export, template, total) for kind, export in (("adls", lake), ("blob", blob))
    }
    first, last, exports_before = held
    latencies = [
        poller.readable_at[i] - pipeline.sent_at[i] for i in range(first, last) if i in poller.readable_at
    ]
    export_times = pipeline.export_seconds[exports_before:]
    decode_times = pipeline.decode_seconds[exports_before:]
    figures = [
        Figure(
            "e2e.steady_rate",
            f"steady rate kept for {scale.e2e_hold_seconds:g} s",
            best,
            "signals/s",
            reference="e2e.saturated_local",
            ratio=best / saturated["real"] if saturated["real"] else None,
            note=f"{best * SIGNAL_BYTES / 1e6:.1f} MB/s, 1 KB signals, 2 exports, 4 partitions",
        ),
        Figure(
            "e2e.latency_p50",
            "send to readable, p50",
            median(latencies),
            "s",
            note=f"{len(latencies)} signals, polled every {POLL_SECONDS:g} s",
        ),
        Figure("e2e.latency_p99", "send to readable, p99", quantile(latencies, 0.99), "s"),
        Figure("e2e.export_call_p50", "Exporter.export per batch, p50", median(export_times), "s"),
        Figure("e2e.export_call_p99", "Exporter.export per batch, p99", quantile(export_times, 0.99), "s"),
        Figure(
            "e2e.decode_call_p50",
            "worker's event decoding per batch, p50",
            median(decode_times),
            "s",
            note="azure.functions EventHubTriggerConverter + batch_from_trigger, before export_signals",
        ),
        Figure(
            "e2e.verified",
            "verified exactly once / sent",
            min(v["exactly_once"] for v in verified.values()) / total,
            "x",
            note=f"{total} signals sent, each checked byte for byte in ADLS Gen2 and Blob",
        ),
        Figure(
            "e2e.saturated_local",
            "saturated, local stack",
            saturated["real"],
            "signals/s",
            saturated["real_samples"],
            reference="e2e.saturated_cpu",
            ratio=median(ratios(saturated["real_samples"], saturated["cpu_samples"])),
        ),
        Figure(
            "e2e.saturated_cpu",
            "saturated, storage without I/O",
            saturated["cpu"],
            "signals/s",
            saturated["cpu_samples"],
        ),
    ]
    log(
        f"  e2e: kept {best:,.0f} signals/s for {scale.e2e_hold_seconds:g} s; send to readable p50 "
        f"{median(latencies) * 1000:.0f} ms, p99 {quantile(latencies, 0.99) * 1000:.0f} ms; "
        f"{min(v['exactly_once'] for v in verified.values())} of {total} signals verified"
    )
    return {
        "method": METHOD,
        "partitions": len(PARTITIONS),
        "signal_bytes": SIGNAL_BYTES,
        "exports": ["adls hourly", "blob (Application Insights layout)"],
        "steps": steps,
        "signals_sent": total,
        "verified": verified,
        "failed_writes": pipeline.failures,
        "poll_errors": poller.errors[:5],
        "batches": pipeline.batches,
        "figures": [f.to_json() for f in figures],
    }


def _step(
    pipeline: Pipeline,
    rate: float,
    seconds: float,
    steps: list[dict[str, Any]],
    log: Callable[[str], None],
    *,
    hold: bool = False,
) -> bool:
    """Send at `rate` for `seconds`; kept when at most one full batch per partition is left unsent."""
    if not pipeline.drain(120):
        raise RuntimeError("the pipeline did not drain between steps")
    failures = pipeline.failures
    pipeline.produce(rate, seconds)
    unsent = pipeline.unsent()
    kept = unsent <= MAX_BATCH * len(PARTITIONS) and pipeline.failures == failures
    steps.append({"rate": rate, "seconds": seconds, "unsent_at_end": unsent, "kept": kept, "hold": hold})
    log(
        f"  e2e: {'hold' if hold else 'step'} {rate:,.0f}/s for {seconds:g} s: unsent {unsent} -> "
        f"{'kept' if kept else 'falls behind'}"
    )
    return kept


def _saturation(
    stack: Stack, runtime: Runtime, scale: Scale, template: Template, log: Callable[[str], None]
) -> dict[str, Any]:
    """The same batches back to back through the pipeline on the local stack and on storage that does
    no I/O, round by round."""
    project = f"sat-{uuid.uuid4().hex[:8]}"
    place = f"sat{uuid.uuid4().hex[:8]}"
    exports = [
        create_export(runtime, project, "lake", stack.adls(place, "signals")),
        create_export(runtime, project, "ai", stack.blob(place)),
    ]
    writers = Fanout(16, "bench-write")
    exporters = {"real": runtime.exporter, "cpu": memory_exporter(exports, MemorySink(), writers)}
    sequences = {(name, p): 0 for name in exporters for p in PARTITIONS}
    bodies = [template.make(i) for i in range(MAX_BATCH)]

    def run(name: str) -> float:
        exporter = exporters[name]
        enqueued = datetime.now(UTC)
        cuts = []
        for index in range(scale.e2e_saturation_batches):
            partition = PARTITIONS[index % len(PARTITIONS)]
            first = sequences[(name, partition)]
            sequences[(name, partition)] += MAX_BATCH
            cuts.append((partition, [Sent(b, project, first + i, enqueued) for i, b in enumerate(bodies)]))
        start = time.perf_counter()
        for partition, cut in cuts:
            report = exporter.export(batch_from_trigger(trigger_events(partition, cut, "signals")))
            if any(t.writes_failed for t in report.exports.values()):
                raise RuntimeError("a write failed in the saturation run")
        return len(cuts) * MAX_BATCH / (time.perf_counter() - start)

    try:
        run("real")  # warm: files created, clients connected
        samples: dict[str, list[float]] = {"real": [], "cpu": []}
        for round_ in range(scale.e2e_repeats):
            for name in ("real", "cpu") if round_ % 2 == 0 else ("cpu", "real"):
                samples[name].append(run(name))
    finally:
        writers.close()
    log(
        f"  e2e: saturated {median(samples['real']):,.0f} signals/s on the local stack, "
        f"{median(samples['cpu']):,.0f} signals/s without I/O"
    )
    return {
        "real": median(samples["real"]),
        "cpu": median(samples["cpu"]),
        "real_samples": samples["real"],
        "cpu_samples": samples["cpu"],
    }


def _verify(stack: Stack, export: Export, template: Template, total: int) -> dict[str, int]:
    """Every line a sent signal byte for byte, every signal exactly once."""
    seen = bytearray(total)
    wrong = 0
    destination = export.destination
    if isinstance(destination, AdlsDestination):
        fs = stack.lake_service().get_file_system_client(destination.filesystem)
        datas = (
            fs.get_file_client(p.name).download_file().readall()
            for p in fs.get_paths(recursive=True)
            if not p.is_directory
        )
    else:
        assert isinstance(destination, BlobDestination)
        container = stack.blob_service().get_container_client(destination.container)
        datas = (container.download_blob(b.name).readall() for b in container.list_blobs())
    for data in datas:
        for line in data.splitlines():
            index = Template.id_of(line)
            if index >= total or line != template.make(index):
                wrong += 1
            elif seen[index] < 255:
                seen[index] += 1
    return {
        "sent": total,
        "exactly_once": sum(1 for count in seen if count == 1),
        "missing": seen.count(0),
        "duplicated": sum(1 for count in seen if count > 1),
        "unexpected_lines": wrong,
    }
