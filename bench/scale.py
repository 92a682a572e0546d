"""7. Scale: what the service's fixed work costs against the number of exports that exist.

Sizes 1,000, 10,000 and 100,000 exports (the quick run: 1,000 and 10,000), each on an Azurite of its
own (in memory: Azurite otherwise writes every table to disk every 5 seconds) beside the stack's ADLS
Gen2 emulator, through `Runtime` as the functions use it, on a clock that moves a minute per check. All
sizes are seeded first, then each measurement is taken size after size in turn, so that the machine's
other load moves them all alike.

- **seed**: the exports, 10 per project (each selecting a signal name of its own), stored by
  `Exports.create_all` (one entity-group transaction per project), and their health records as a
  check leaves an idle export's, by `HealthRecords.save_all` (the same); the check's state row as a
  running service has it.
- **idle**: nothing happens for `scale_minutes` minutes, a health check each: its wall time, the CPU
  time of this process (its threads included; Azurite and the emulator run apart) and Table requests.
- **active**: 1% of the exports (one per project, every 10th project: the signals carry the name
  that export selects) receive `scale_signals` signals a minute, a project's on one partition (of 4,
  by its id, as a producer keyed by project sends them), batches mixing projects as a hub cuts them;
  each minute the batches go through `Runtime.exporter`, then the health check runs. Reported: the
  check's wall and CPU time, every Table request of the minute (the export path's and the check's),
  and that minus the idle minute's over the active exports. The first active minute (files created,
  caches cold) is left out.
- **first batch after the cache expired**: a batch of 10 signals of one active project right after
  the export registry forgot it (`invalidate`), on a partition whose ledger the instance holds: wall
  and CPU time, Table requests; beside Azurite answering the same lookup alone (the partition query),
  which scans the whole table in Azurite (LokiTableMetadataStore.queryTableEntities, 3.37) but reads
  one partition in Azure.
- **memory**: the peak of Python's allocations (tracemalloc) in one more minute of each kind (not
  timed: tracemalloc slows allocations).
- **transactions per export per month**: requests to the service's own storage (tables, queues, its
  blobs) in a minute, times 43,200, over the exports that exist.

Goals (the issue), at 100,000 exports with 1,000 active: the slowest check within a sixth of its
period (10 s of the minute); Table requests within 3 per active export and minute above the idle
minute; the first batch within x1.2 of the same at 1,000 exports (pairwise, median).
"""

from __future__ import annotations

import base64
import dataclasses
import time
import tracemalloc
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

from bench.common import Figure, Scale, median, no_faults, ratios
from bench.stack import SERVICE_KEY, Stack
from devstack.azurite import ACCOUNT, KEY, Azurite
from shared.exports import Exports
from shared.health.check import HealthItem
from shared.health.records import HealthRecord
from shared.health.rules import Tick
from shared.model import Export
from shared.pipeline import EventBatch
from shared.requests import RequestCounter
from shared.runtime import Runtime
from shared.settings import Settings
from shared.signals import IncomingEvent

PER_PROJECT = 10
SEED_THREADS = 4
PARTITIONS = ("0", "1", "2", "3")
ACTIVE_SHARE = 100  # one export in a hundred receives signals
FIRST_BATCHES = 9  # first batches after the cache expired, per size
MINUTE = 60.0
MONTH_MINUTES = 43_200
PERIOD = 60.0  # HEALTH_SCHEDULE's default: every minute


@dataclasses.dataclass
class Clock:
    """The service's clock: a minute per check, from now."""

    now: float

    def __call__(self) -> float:
        return self.now


def measure(stack: Stack, scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every size on its own storage at once, each measurement taken size after size in turn, so that
    the sizes are compared side by side (the machine's other load moves them all)."""
    with ExitStack() as services:
        sizes = []
        for size in scale.scale_sizes:
            runtime, counter, clock = services.enter_context(_service(stack))
            mark = time.monotonic()
            projects = _seed(stack, runtime, size)
            seeded = time.monotonic() - mark
            log(f"  scale: seeded {size:,} exports and their records in {seeded:.1f} s")
            sizes.append(_Size(size, runtime, counter, clock, projects, seeded))
        with no_faults("the scale measurement"):
            for _ in range(scale.scale_minutes):
                for one in sizes:
                    one.idle.append(_minute(one.runtime, one.counter, one.clock, []))
            for one in sizes:
                one.idle_memory = _minute(one.runtime, one.counter, one.clock, [], traced=True)["memory"]
            for minute in range(scale.scale_minutes + 1):
                for one in sizes:
                    cost = _minute(
                        one.runtime, one.counter, one.clock, one.active, scale.scale_signals, one.sequences
                    )
                    if minute:  # the first: files created, caches cold
                        one.busy.append(cost)
            for one in sizes:
                traced = _minute(
                    one.runtime,
                    one.counter,
                    one.clock,
                    one.active,
                    scale.scale_signals,
                    one.sequences,
                    traced=True,
                )
                one.busy_memory = traced["memory"]
            for index in range(FIRST_BATCHES):
                for one in sizes:
                    project = one.active[index % len(one.active)]
                    one.first.append(
                        _first_batch(one.runtime, one.counter, one.clock, project, one.sequences)
                    )
    rows = [one.row() for one in sizes]
    figures = [figure for one in sizes for figure in one.figures()] + _goals(sizes)
    for figure in figures:
        if figure.id.startswith("scale.goal"):
            verdict = "met" if figure.met else "NOT met"
            log(f"  scale: {figure.label}: {figure.value:.3g} (goal {figure.goal}: {verdict})")
    return {"rows": rows, "figures": [f.to_json() for f in figures]}


@dataclasses.dataclass
class _Size:
    """One size of the run: its service, and what was measured."""

    exports: int
    runtime: Runtime
    counter: RequestCounter
    clock: Clock
    projects: list[str]
    seeded: float
    idle: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    busy: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    first: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    idle_memory: float = 0.0
    busy_memory: float = 0.0
    sequences: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(PARTITIONS, 0))

    @property
    def active(self) -> list[str]:
        """The active projects: every 10th (its export e0 receives signals)."""
        return self.projects[:: ACTIVE_SHARE // PER_PROJECT]

    def table_above_idle(self) -> float:
        """Table requests a minute per active export, above the idle minute."""
        idle = median([m["table"] for m in self.idle])
        return (median([m["table"] for m in self.busy]) - idle) / len(self.active)

    def row(self) -> dict[str, Any]:
        return {
            "exports": self.exports,
            "active_exports": len(self.active),
            "seed_seconds": self.seeded,
            "idle": self.idle,
            "active": self.busy,
            "first_batch": self.first,
            "idle_memory_mb": self.idle_memory,
            "active_memory_mb": self.busy_memory,
        }

    def figures(self) -> list[Figure]:
        prefix, label = f"scale.n{self.exports}", f"{self.exports:,} exports"
        busy = f"{label}, {len(self.active):,} active"

        def first(key: str, what: str, unit: str, **extra: Any) -> Figure:
            values = [b[key] for b in self.first]
            return Figure(
                f"{prefix}.first_batch_{key}", f"{label}: {what}", median(values), unit, values, **extra
            )

        return [
            Figure(f"{prefix}.seed_seconds", f"{label}: seeding (exports and records)", self.seeded, "s"),
            *_minute_figures(f"{prefix}.idle", f"{label}, idle", self.idle, self.exports),
            Figure(
                f"{prefix}.idle.memory",
                f"{label}, idle: peak Python allocations, a minute",
                self.idle_memory,
                "MB",
            ),
            *_minute_figures(f"{prefix}.active", busy, self.busy, self.exports),
            Figure(
                f"{prefix}.active.memory",
                f"{busy}: peak Python allocations, a minute",
                self.busy_memory,
                "MB",
            ),
            Figure(
                f"{prefix}.active.table_per_active_export",
                f"{label}: table requests a minute per active export, above idle",
                self.table_above_idle(),
                "requests",
            ),
            first("wall", "first batch of a project after its cache expired (wall)", "s"),
            first("cpu", "first batch after the cache expired (CPU of the service)", "s"),
            first("table", "table requests of that first batch", "requests"),
            first("lookup", "Azurite answering that project's lookup alone (wall)", "s"),
        ]


def _minute_figures(prefix: str, label: str, minutes: list[dict[str, Any]], size: int) -> list[Figure]:
    def figure(key: str, what: str, unit: str) -> Figure:
        values = [m[key] for m in minutes]
        return Figure(f"{prefix}.{key}", f"{label}: {what}", median(values), unit, values)

    service = [m["service"] * MONTH_MINUTES / size for m in minutes]
    walls = [m["check_wall"] for m in minutes]
    return [
        figure("check_wall", "health check (wall)", "s"),
        figure("check_cpu", "health check (CPU of the service)", "s"),
        Figure(f"{prefix}.check_max_wall", f"{label}: health check (wall), slowest", max(walls), "s", walls),
        figure("table", "table requests a minute", "requests"),
        Figure(
            f"{prefix}.transactions_per_export_month",
            f"{label}: service storage transactions per export and month",
            median(service),
            "requests",
            service,
        ),
    ]


def _goals(sizes: list[_Size]) -> list[Figure]:
    """The issue's goals, at the largest size measured (100,000 in the full run); the first batch's
    ratio is the median of the ratios of batches measured one after the other."""
    largest, smallest = sizes[-1], sizes[0]
    prefix = f"{largest.exports:,} exports, {len(largest.active):,} active"
    share = max(m["check_wall"] for m in largest.busy) / PERIOD
    per_active = largest.table_above_idle()
    pairs = ratios([b["wall"] for b in largest.first], [b["wall"] for b in smallest.first])
    cpu = ratios([b["cpu"] for b in largest.first], [b["cpu"] for b in smallest.first])
    versus = f"{largest.exports:,} vs {smallest.exports:,} exports"
    return [
        Figure(
            "scale.goal.check_share",
            f"{prefix}: slowest health check / its period",
            share,
            "x",
            goal="at most 1/6 (x0.17)",
            met=share <= 1 / 6,
        ),
        Figure(
            "scale.goal.table_per_active",
            f"{prefix}: table requests a minute per active export, above idle",
            per_active,
            "x",
            goal="at most 3",
            met=per_active <= 3,
        ),
        Figure(
            "scale.goal.first_batch_ratio",
            f"first batch after the cache expired (wall), {versus}",
            median(pairs),
            "x",
            pairs,
            reference=f"scale.n{smallest.exports}.first_batch_wall",
            ratio=median(pairs),
            goal="at most x1.2",
            met=median(pairs) <= 1.2,
        ),
        Figure(
            "scale.first_batch_cpu_ratio",
            f"first batch after the cache expired (CPU of the service), {versus}",
            median(cpu),
            "x",
            cpu,
            reference=f"scale.n{smallest.exports}.first_batch_cpu",
            ratio=median(cpu),
        ),
    ]


# -- the service on its own storage ---------------------------------------------------------------


@contextmanager
def _service(stack: Stack) -> Iterator[tuple[Runtime, RequestCounter, Clock]]:
    azurite = Azurite(accounts={ACCOUNT: KEY}, in_memory=True).start()
    try:
        counter = RequestCounter(
            {
                f":{azurite.table_port}/": "table",
                f":{azurite.queue_port}/": "queue",
                f":{azurite.blob_port}/": "service-blob",
                f":{stack.lake.port}/": "lake",
            }
        )
        settings = Settings(
            storage_connection=azurite.connection_string(),
            eventhub_name=f"hub{uuid.uuid4().hex[:10]}",
            key_encryption_key=SERVICE_KEY,
            allowed_storage_suffixes=(".core.windows.net", "127.0.0.1"),
        )
        # A few seconds into a minute: every size's first batches (a second apart) fall in the same
        # minute as its minute's signals, so a due mark (once per export and minute) is never counted
        # in one size's first batch and not another's.
        clock = Clock(time.time() // MINUTE * MINUTE + 5.0)
        runtime = Runtime(settings, request_hook=counter, clock=clock)
        runtime.provision()
        yield runtime, counter, clock
    finally:
        process = getattr(azurite, "_process", None)
        if process is not None:
            process.kill()  # its data is thrown away: no need to wait for idle connections
        azurite.close()


def _seed(stack: Stack, runtime: Runtime, size: int) -> list[str]:
    """Exports and their records, as a running service has them after the exports' first check (their
    writes are not marked: they are long known); the check's state row as the service keeps it. A
    project's exports in one transaction, its records in another; four projects at a time. Returns the
    projects."""
    filesystem = f"scale{uuid.uuid4().hex[:8]}"
    runtime.destinations.prepare(stack.adls(filesystem, ""))
    projects = [f"s{index:06d}" for index in range(size // PER_PROJECT)]
    store = Exports(runtime.exports_table, runtime.keys, clock=runtime.now)
    now = runtime.now()

    def seed(project: str) -> None:
        exports = [
            Export(
                project,
                f"e{index}",
                stack.adls(filesystem, f"{project}/e{index}"),
                signals=frozenset({f"n{index}"}),
                generation=f"g{project}",
            )
            for index in range(PER_PROJECT)
        ]
        store.create_all(exports)
        records = [
            HealthRecord(
                *export.key, since=now - 3600.0, ticks=[Tick()] * 5, tick_seq=1, ticked_at=now - 3600.0
            )
            for export in exports
        ]
        runtime.health_records.save_all([(record, None) for record in records])

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(seed, projects))
    state, etag = runtime.due.state("check")
    steady = {"seq": 1, "started": now - MINUTE, "items_open": 0, "sweep_version": 1}
    fingerprint = runtime.exports.fingerprint
    runtime.due.save_state("check", {**state, **steady, "sweep_keys": fingerprint, "sweep_at": now}, etag)
    return projects


# -- a minute of the service ---------------------------------------------------------------------


def _minute(
    runtime: Runtime,
    counter: RequestCounter,
    clock: Clock,
    projects: list[str],
    signals: int = 0,
    sequences: dict[str, int] | None = None,
    *,
    traced: bool = False,
) -> dict[str, Any]:
    """A minute: the active projects' signals through the export path, then the health check (and its
    work items, if it shared any, run here). What it cost; `traced`: the peak of Python's allocations
    (tracemalloc slows allocations down: such a minute is not timed)."""
    clock.now += MINUTE
    counter.reset()
    if traced:
        tracemalloc.start()
    if projects and sequences is not None:
        for batch in _batches(projects, signals, sequences, clock.now):
            exported = runtime.exporter.export(batch)
            if any(t.writes_failed or t.backlogged for t in exported.exports.values()):
                raise RuntimeError("a write failed during the scale measurement")
    wall, cpu = time.perf_counter(), time.process_time()
    report = runtime.health_check.run()
    while report.items:  # what the timer shared out, judged by this instance's queue function
        report.items -= _drain(runtime)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    counts = dict(counter.counts)
    if report.skipped:
        raise RuntimeError("the health check was skipped: the figures would not be comparable")
    return {
        "check_wall": wall,
        "check_cpu": cpu,
        "judged": report.checked,
        "table": counts.get("table", 0),
        "service": counts.get("table", 0) + counts.get("queue", 0) + counts.get("service-blob", 0),
        "memory": peak / 1e6,
    }


def _drain(runtime: Runtime) -> int:
    done = 0
    for message in runtime.health_queue.receive_messages(messages_per_page=32, visibility_timeout=600):
        runtime.health_check.run_item(HealthItem.from_message(base64.b64decode(message.content).decode()))
        runtime.health_queue.delete_message(message)
        done += 1
    return done


def _first_batch(
    runtime: Runtime, counter: RequestCounter, clock: Clock, project: str, sequences: dict[str, int]
) -> dict[str, Any]:
    """A project's batch right after the registry forgot it, on a partition this instance holds."""
    clock.now += 1.0
    batch = next(_batches([project], 10, sequences, clock.now))
    lookup = time.perf_counter()
    list(runtime.exports_table.query_entities("PartitionKey eq @p", parameters={"p": project}))
    lookup = time.perf_counter() - lookup
    runtime.registry.invalidate()
    counter.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    runtime.exporter.export(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "table": counter.counts.get("table", 0), "lookup": lookup}


def _batches(
    projects: list[str], signals: int, sequences: dict[str, int], now: float
) -> Iterator[EventBatch]:
    """The minute's signals: each project's on its partition, batches of at most 512 mixing projects."""
    at = datetime.fromtimestamp(now, UTC)
    by_partition: dict[str, list[IncomingEvent]] = {partition: [] for partition in PARTITIONS}
    for project in projects:
        partition = PARTITIONS[zlib.crc32(project.encode()) % len(PARTITIONS)]
        events = by_partition[partition]
        for index in range(signals):
            sequence = sequences[partition]
            sequences[partition] += 1
            body = b'{"name":"n0","project":"%s","i":%d,"n":%d}' % (project.encode(), index, sequence)
            events.append(IncomingEvent(body, sequence, at, project))
    for partition, events in by_partition.items():
        for start in range(0, len(events), 512):
            yield EventBatch(partition, events[start : start + 512])
