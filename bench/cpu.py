"""1. Export path CPU throughput: `Exporter.export` on one batch with storage that does no I/O.

Everything the Event Hub function does to a batch except the network: decode and validate each body,
route by project, filter by name, group by destination file, encode each file's append, and record
the ledger (the real `PartitionLedger` over a table stand-in that answers at once); the file writes run
in the exporter's thread pool as in production. Throughput is in signals per CPU second of the process
(`time.process_time`: every thread's CPU, which other jobs on the machine do not inflate). Side by
side, round by round, each on fresh batches of the same bodies (as a trigger receives them):

- the limit reference: the least work any correct exporter must do per signal: validate the body as a
  JSON object and read its `name` (pysimdjson), then join the bodies into one buffer per destination;
- the usual approach: `json.loads` each body, test the name, `json.dumps` it again for each export.

Every export is an hourly ADLS Gen2 export of one project, so each export's destination is one file
per batch and the three approaches produce the same buffers (checked before timing; the usual approach
re-encodes, so only its line count is checked). Even-numbered exports take every signal, odd-numbered
ones select half the names.
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import simdjson

from bench.common import (
    SELECTED,
    Figure,
    Scale,
    bodies,
    event_batch,
    median,
    no_faults,
    paired,
    ratios,
    size_tag,
)
from shared.delivery import FileInfo
from shared.destinations import MAX_ADLS_APPEND
from shared.fanout import Fanout
from shared.ledger import PartitionLedger
from shared.location import Locator
from shared.model import AdlsDestination, Destination, Export, Secret
from shared.pipeline import EventBatch, Exporter
from shared.signals import Rejection

PROJECT = "bench-project"
PARTITION = "0"
KEY = Secret("YmVuY2g=")
GOAL_EXPORTS = 10
GOAL_VS_LIMIT = 0.5
GOAL_VS_USUAL = 10.0
APPROACHES = ("exporter", "limit", "usual")


def exports_for(count: int) -> list[Export]:
    """`count` hourly ADLS exports of one project; odd ones select half the signal names."""
    return [
        Export(
            PROJECT,
            f"e{i:03d}",
            AdlsDestination("https://acct.dfs.core.windows.net", "signals", f"export{i}", KEY),
            None if i % 2 == 0 else SELECTED,
        )
        for i in range(count)
    ]


# -- storage that does no I/O ---------------------------------------------------------------------


class MemorySink:
    """A FileSink over lengths in memory: every append succeeds at once. Keeps the payloads only when
    asked (the correctness check), so timing measures the exporter, not the stand-in."""

    max_append = MAX_ADLS_APPEND  # the exports are ADLS Gen2 exports: one append per file and batch

    def __init__(self) -> None:
        self.lengths: dict[str, int] = {}
        self.payloads: dict[str, list[bytes]] | None = None

    def create(self, path: str, owner: str = "") -> bool:
        if path in self.lengths:
            return False
        self.lengths[path] = 0
        return True

    def length(self, path: str) -> int | None:
        return self.lengths.get(path)

    def describe(self, path: str) -> FileInfo | None:
        length = self.lengths.get(path)
        return None if length is None else FileInfo(length, "")

    def append(self, path: str, data: bytes, position: int) -> int:
        self.lengths[path] = position + len(data)
        if self.payloads is not None:
            self.payloads.setdefault(path, []).append(data)
        return position + len(data)

    def read(self, path: str, start: int, end: int) -> bytes:
        return b""


class MemoryTable:
    """The ledger's TableClient, answering at once: no rows, every transaction accepted."""

    def __init__(self) -> None:
        self.transactions = 0

    def query_entities(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def get_entity(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the benchmark's batches never need a fresh ledger read")

    def submit_transaction(self, operations: Iterable[Any], **kwargs: Any) -> list[Mapping[str, Any]]:
        self.transactions += 1
        return [{"etag": f"W/{self.transactions}"} for _ in list(operations)]


class NoDeadLetters:
    def put(self, partition: str, rejections: Iterable[Rejection]) -> int:
        return sum(1 for _ in rejections)


def memory_exporter(
    exports: list[Export],
    sink: MemorySink,
    writers: Fanout,
    *,
    locator: Callable[[], Locator] = lambda: Locator(None),
) -> Exporter:
    """An Exporter wired as `Runtime.exporter` is, over storage that does no I/O (and, for exports
    with the location option, the database `locator` gives)."""
    by_project: dict[str, list[Export]] = {}
    for export in exports:
        by_project.setdefault(export.project_id, []).append(export)
    ledgers: dict[str, PartitionLedger] = {}

    def ledger_for(partition: str) -> PartitionLedger:
        if partition not in ledgers:
            ledgers[partition] = PartitionLedger(MemoryTable(), f"bench-{partition}")
        return ledgers[partition]

    def sink_for(destination: Destination) -> MemorySink:
        return sink

    return Exporter(
        exports_of=lambda project: by_project.get(project, []),
        ledger_for=ledger_for,
        sink_for=sink_for,
        backlog=object(),  # type: ignore[arg-type]  # no export is postponed: never used
        dead_letters=NoDeadLetters(),
        writers=writers,
        locator=locator,
    )


# -- the two references ---------------------------------------------------------------------------


Send = Callable[[int, bytes], object]


def _drop(index: int, buffer: bytes) -> object:
    """What the references do with a destination's buffer: nothing (the exporter's sink stand-in
    does nothing either), after which it is freed, as a sent payload is."""
    return None


def limit_reference(
    batch: EventBatch, selections: Sequence[frozenset[str] | None], send: Send = _drop
) -> None:
    """Validate each body as a JSON object and read its name (pysimdjson); join per destination."""
    parser = simdjson.Parser()
    per: list[list[bytes]] = [[] for _ in selections]
    pairs = list(zip(selections, per, strict=True))
    for event in batch.events:
        document = parser.parse(event.body)
        if not isinstance(document, simdjson.Object):
            continue
        name = document.get("name")
        del document
        if not isinstance(name, str):
            continue
        for selection, lines in pairs:
            if selection is None or name in selection:
                lines.append(event.body)
    for index, lines in enumerate(per):
        if lines:
            lines.append(b"")  # the last newline in the same join: one copy of the bodies
            send(index, b"\n".join(lines))


def usual_approach(
    batch: EventBatch, selections: Sequence[frozenset[str] | None], send: Send = _drop
) -> None:
    """What a typical function does: json.loads each body, test the name, json.dumps per export."""
    per: list[list[str]] = [[] for _ in selections]
    pairs = list(zip(selections, per, strict=True))
    for event in batch.events:
        document = json.loads(event.body)
        if not isinstance(document, dict):
            continue
        name = document.get("name")
        for selection, lines in pairs:
            if selection is None or name in selection:
                lines.append(json.dumps(document))
    for index, lines in enumerate(per):
        if lines:
            lines.append("")
            send(index, "\n".join(lines).encode())


# -- the measurement ------------------------------------------------------------------------------


class Case:
    """One configuration (exports, signal size): its batches, exporter and the three timed runs."""

    def __init__(self, exports: int, size: int, scale: Scale) -> None:
        self.exports = exports_for(exports)
        self.selections = [export.signals for export in self.exports]
        self.payloads = bodies(scale.cpu_batch_events, size)
        self.batch_bytes = sum(len(p) for p in self.payloads)
        self.events = len(self.payloads)
        self.sink = MemorySink()
        self.writers = Fanout(16, "bench-write")
        self.exporter = memory_exporter(self.exports, self.sink, self.writers)
        self.next_sequence = {name: 0 for name in APPROACHES}
        self.sample_seconds = scale.cpu_sample_seconds
        self.reference_batch = self.batch("limit")
        self.rounds = {"exporter": 1, "limit": 1, "usual": 1}

    def close(self) -> None:
        self.writers.close()

    def batch(self, name: str) -> EventBatch:
        """The batch again, with the approach's next sequence numbers: the exporter's batches follow
        one another as a partition's do, so its ledger keeps its cache (a gap means another owner may
        have written: shared.ledger reloads)."""
        batch = event_batch(PARTITION, PROJECT, self.payloads, self.next_sequence[name])
        self.next_sequence[name] += len(self.payloads)
        return batch

    def check(self) -> None:
        """The exporter writes exactly the limit reference's buffers; the usual approach as many lines."""
        self.sink.payloads = {}
        self.exporter.export(self.batch("exporter"))
        written = self.sink.payloads
        self.sink.payloads = None
        limit: dict[int, bytes] = {}
        usual: dict[int, bytes] = {}
        limit_reference(self.reference_batch, self.selections, limit.__setitem__)
        usual_approach(self.reference_batch, self.selections, usual.__setitem__)
        for index, export in enumerate(self.exports):
            mine = [b"".join(v) for k, v in written.items() if f"/export{index}/" in f"/{k}"]
            expected = [limit[index]] if index in limit else []
            if mine != expected:
                raise AssertionError(f"the exporter's output differs from the limit's for {export.export_id}")
            if usual.get(index, b"").count(b"\n") != limit.get(index, b"").count(b"\n"):
                raise AssertionError("the usual approach selected other signals")

    def calibrate(self) -> None:
        """How many batches one timed sample runs, per approach (at least `sample_seconds` long)."""
        if self.sample_seconds <= 0:
            return  # quick: one batch per sample
        for name, run in self.runs().items():
            batch = self.batch(name)
            start = time.process_time()
            run(batch)
            once = time.process_time() - start
            self.rounds[name] = max(1, math.ceil(self.sample_seconds / max(once, 1e-6)))

    def sample(self, name: str) -> float:
        """Signals per second over one timed sample of whole batches.

        Every approach runs on batches built for the sample, one fresh batch per round, as a trigger
        receives them: a single batch run again and again would sit in the CPU cache and flatter
        whichever approach got it."""
        rounds = self.rounds[name]
        run = self.runs()[name]
        batches = [self.batch(name) for _ in range(rounds)]
        gc.collect()
        start = time.process_time()
        for batch in batches:
            run(batch)
        elapsed = time.process_time() - start
        return rounds * self.events / elapsed

    def runs(self) -> dict[str, Callable[[EventBatch], Any]]:
        return {
            "exporter": self.exporter.export,
            "limit": partial(_reference, limit_reference, self.selections),
            "usual": partial(_reference, usual_approach, self.selections),
        }


def _reference(
    approach: Callable[[EventBatch, Sequence[frozenset[str] | None]], None],
    selections: Sequence[frozenset[str] | None],
    batch: EventBatch,
) -> None:
    approach(batch, selections)


def measure(scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    rows = []
    figures: list[Figure] = []
    for exports in scale.cpu_exports:
        for size in scale.cpu_sizes:
            case = Case(exports, size, scale)
            try:
                with no_faults(f"cpu, {exports} exports, {size_tag(size)}"):
                    case.check()
                    case.calibrate()
                    runs = {name: partial(case.sample, name) for name in APPROACHES}
                    samples = paired(runs, scale.cpu_repeats)
            finally:
                case.close()
            mean_size = case.batch_bytes / case.events
            row: dict[str, Any] = {"exports": exports, "signal_bytes": round(mean_size), "size": size}
            for name, values in samples.items():
                rate = median(values)
                row[name] = {
                    "signals_per_s": rate,
                    "mb_per_s": rate * mean_size / 1e6,
                    "samples": values,
                }
            row["vs_limit"] = median(ratios(samples["exporter"], samples["limit"]))
            row["vs_usual"] = median(ratios(samples["exporter"], samples["usual"]))
            rows.append(row)
            tag = f"cpu.e{exports}.s{size_tag(size)}"
            goal = exports == GOAL_EXPORTS
            figures += [
                Figure(
                    f"{tag}.exporter",
                    f"export path, {exports} exports, {size_tag(size)} signals",
                    row["exporter"]["signals_per_s"],
                    "signals/s",
                    samples["exporter"],
                    note=f"{row['exporter']['mb_per_s']:.1f} MB/s",
                ),
                Figure(
                    f"{tag}.limit",
                    f"limit reference, {exports} exports, {size_tag(size)}",
                    row["limit"]["signals_per_s"],
                    "signals/s",
                    samples["limit"],
                    note=f"{row['limit']['mb_per_s']:.1f} MB/s",
                ),
                Figure(
                    f"{tag}.usual",
                    f"usual approach, {exports} exports, {size_tag(size)}",
                    row["usual"]["signals_per_s"],
                    "signals/s",
                    samples["usual"],
                    note=f"{row['usual']['mb_per_s']:.1f} MB/s",
                ),
                Figure(
                    f"{tag}.vs_limit",
                    f"export path / limit reference, {exports} exports, {size_tag(size)}",
                    row["vs_limit"],
                    "x",
                    ratios(samples["exporter"], samples["limit"]),
                    reference=f"{tag}.limit",
                    ratio=row["vs_limit"],
                    goal=f">= {GOAL_VS_LIMIT}" if goal else None,
                    met=row["vs_limit"] >= GOAL_VS_LIMIT if goal else None,
                ),
                Figure(
                    f"{tag}.vs_usual",
                    f"export path / usual approach, {exports} exports, {size_tag(size)}",
                    row["vs_usual"],
                    "x",
                    ratios(samples["exporter"], samples["usual"]),
                    reference=f"{tag}.usual",
                    ratio=row["vs_usual"],
                    goal=f">= {GOAL_VS_USUAL}" if goal else None,
                    met=row["vs_usual"] >= GOAL_VS_USUAL if goal else None,
                ),
            ]
            log(
                f"  cpu: {exports:>3} exports, {size_tag(size):>4}: exporter "
                f"{row['exporter']['signals_per_s']:,.0f}/s, limit {row['limit']['signals_per_s']:,.0f}/s, "
                f"usual {row['usual']['signals_per_s']:,.0f}/s "
                f"(x{row['vs_limit']:.2f} limit, x{row['vs_usual']:.1f} usual)"
            )
    return {
        "batch_events": scale.cpu_batch_events,
        "repeats": scale.cpu_repeats,
        "rows": rows,
        "figures": [f.to_json() for f in figures],
    }
