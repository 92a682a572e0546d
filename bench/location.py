"""Location enrichment against the export path: the CPU cost per signal of enriching a batch for 10
exports, next to the export path's own cost per signal (measured as section 1 measures it), side by side.

Not yet part of `python -m bench`: the export path calls no enrichment until the pipeline does.
`measure(scale, log)` returns figures like the other sections; `python -m bench.location [--quick]`
prints them. Each round times, on fresh batches (as bench.cpu does):

- `without`: `Exporter.export` on a batch, 10 hourly ADLS Gen2 exports of one project (bench.cpu's
  exports: even ones take every signal, odd ones half the names);
- `with`: the same, plus the enrichment the pipeline adds: each group of lines (project, name, minute)
  enriched once per distinct option among the exports that take it (`shared.location.Enrichments`),
  with the database read by `shared.geo.GeoDatabase`. The grouping itself is the export path's (done
  before the clock starts, as the pipeline has it already).

`with / without` is the export path's throughput with enrichment against without; the issue's goal at
10 exports is at least 0.5. Three cases: every export with the same option (a project's usual set-up)
and clients that come back (a pool of 1,000 addresses: a client sends many signals); every export
with its own option (ten enrichments per signal); and every signal from a new client (one database
lookup per signal). Bodies are bench.common's with the address as first member (`clientIp`); the
database is one the benchmark writes (mmdb-writer) with invented places.
"""

from __future__ import annotations

import gc
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from bench.common import NAMES, Figure, Scale, body, event_batch, median, paired, ratios
from bench.cpu import PARTITION, PROJECT, MemorySink, exports_for, memory_exporter
from shared.fanout import Fanout
from shared.geo import FileSource, GeoDatabase
from shared.location import Enrichments
from shared.model import Export, LocationOption
from shared.pipeline import EventBatch
from shared.signals import Group, SignalReader

EXPORTS = 10
GOAL = 0.5
CLIENTS = 1000
OPTION = LocationOption("/clientIp")
CASES = ("same_option", "own_options", "new_clients")


def write_database(path: Path) -> Path:
    """A City database over 81.0.0.0/8 and 2a02::/16: invented places, one per /16 (/32)."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="Bench-City", languages=["en"])
    for second in range(256):
        record = {
            "continent": {"code": "EU", "names": {"en": "Europe"}},
            "country": {"iso_code": "XA", "names": {"en": f"Benchland {second}"}},
            "subdivisions": [{"iso_code": "B1", "names": {"en": f"Bench Province {second}"}}],
            "city": {"names": {"en": f"Bench City {second}"}},
        }
        writer.insert_network(IPSet([f"81.{second}.0.0/16", f"2a02:{second:x}::/32"]), record)
    writer.to_db_file(str(path))
    return path


def client(number: int) -> bytes:
    """The address of client `number`: IPv4, one in four IPv6."""
    a, b, c = (number >> 16) & 0xFF, (number >> 8) & 0xFF, number & 0xFF
    if number % 4 == 3:
        return b"2a02:%x:%x::%x" % (a, b, c + 1)
    return b"81.%d.%d.%d" % (a, b, c or 1)


def located_bodies(count: int, size: int, first_client: int, clients: int | None) -> list[bytes]:
    """`count` bodies of about `size` bytes, each with its client's address first."""
    out = []
    for index in range(count):
        number = first_client + (index if clients is None else index % clients)
        head = b'{"clientIp":"' + client(number) + b'",'
        out.append(head + body(NAMES[index % len(NAMES)], index, size - len(head))[1:])
    return out


class Case:
    """One configuration: exports with their options, batches, and the two timed runs."""

    def __init__(self, size: int, case: str, scale: Scale, database: GeoDatabase) -> None:
        exports = exports_for(EXPORTS)
        if case == "own_options":
            exports = [
                replace(e, location=LocationOption("/clientIp", key=f"location{i}"))
                for i, e in enumerate(exports)
            ]
        else:
            exports = [replace(e, location=OPTION) for e in exports]
        self.exports: list[Export] = exports
        self.size = size
        self.case = case
        self.events = scale.cpu_batch_events
        self.database = database
        self.writers = Fanout(16, "bench-location")
        self.exporter = memory_exporter(exports, MemorySink(), self.writers)
        self.reader = SignalReader()
        self.next_sequence = 0
        self.next_client = 0
        self.repeat_payloads = located_bodies(self.events, size, 0, CLIENTS)
        self.sample_seconds = scale.cpu_sample_seconds
        self.rounds = {"without": 1, "with": 1}

    def close(self) -> None:
        self.writers.close()

    def batch(self) -> EventBatch:
        if self.case == "new_clients":
            payloads = located_bodies(self.events, self.size, 1_000_000 + self.next_client, None)
            self.next_client += self.events
        else:
            payloads = self.repeat_payloads
        batch = event_batch(PARTITION, PROJECT, payloads, self.next_sequence)
        self.next_sequence += len(payloads)
        return batch

    def enrich(self, groups: dict[Group, list[tuple[int, bytes]]]) -> int:
        """What the pipeline adds: each group enriched once per distinct option of the exports taking it."""
        enrichments = Enrichments(self.database.locator())
        located = 0
        for (_, name, _), lines in groups.items():
            options = {e.location for e in self.exports if e.location is not None and e.selects(name)}
            for option in options:
                _, counts = enrichments(lines, option)
                located += sum(counts.values())
        return located

    def check(self) -> None:
        """Every signal is located (the database covers every client), once per option and group."""
        groups, _ = self.reader.group(self.batch().events)
        if self.enrich(groups) < self.events:
            raise AssertionError("enrichment located fewer signals than the batch holds")

    def run(self, name: str, batches: list[tuple[EventBatch, Any]]) -> None:
        export = self.exporter.export
        if name == "without":
            for batch, _ in batches:
                export(batch)
        else:
            for batch, groups in batches:
                export(batch)
                self.enrich(groups)

    def prepared(self, rounds: int) -> list[tuple[EventBatch, Any]]:
        prepared = []
        for _ in range(rounds):
            batch = self.batch()
            groups, _ = self.reader.group(batch.events)  # the export path's grouping, not timed twice
            prepared.append((batch, groups))
        return prepared

    def calibrate(self) -> None:
        if self.sample_seconds <= 0:
            return
        for name in self.rounds:
            batches = self.prepared(1)
            start = time.process_time()
            self.run(name, batches)
            once = time.process_time() - start
            self.rounds[name] = max(1, math.ceil(self.sample_seconds / max(once, 1e-6)))

    def sample(self, name: str) -> float:
        """Signals per CPU second over one sample of fresh batches."""
        batches = self.prepared(self.rounds[name])
        gc.collect()
        start = time.process_time()
        self.run(name, batches)
        return len(batches) * self.events / (time.process_time() - start)


def measure(
    scale: Scale, log: Callable[[str], None] = print, cases: tuple[str, ...] = CASES
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        database = GeoDatabase(FileSource(str(write_database(Path(folder) / "bench-city.mmdb"))))
        for size in scale.cpu_sizes:
            for case_name in cases:
                case = Case(size, case_name, scale, database)
                try:
                    case.check()
                    case.calibrate()
                    samples = paired(
                        {name: partial(case.sample, name) for name in ("without", "with")}, scale.cpu_repeats
                    )
                finally:
                    case.close()
                without, with_ = median(samples["without"]), median(samples["with"])
                ratio = median(ratios(samples["with"], samples["without"]))
                row = {
                    "size": size,
                    "case": case_name,
                    "without": without,
                    "with": with_,
                    "ratio": ratio,
                    "export_us": 1e6 / without,
                    "enrichment_us": 1e6 / with_ - 1e6 / without,
                    "extension": database.extension,
                }
                rows.append(row)
                tag = f"location.e{EXPORTS}.s{_size_tag(size)}.{case_name}"
                goal = case_name == "same_option"
                figures.append(
                    Figure(
                        f"{tag}.ratio",
                        f"export path with location / without, {EXPORTS} exports, "
                        f"{_size_tag(size)}, {case_name}",
                        ratio,
                        "x",
                        ratios(samples["with"], samples["without"]),
                        ratio=ratio,
                        goal=f">= {GOAL}" if goal else None,
                        met=ratio >= GOAL if goal else None,
                        note=f"per signal: {row['enrichment_us']:.2f} us enrichment, "
                        f"{row['export_us']:.2f} us export path",
                    )
                )
                log(
                    f"  location: {_size_tag(size):>4} {case_name:<12} without {without:,.0f}/s, "
                    f"with {with_:,.0f}/s "
                    f"(x{ratio:.2f}); per signal: export path {row['export_us']:.2f} us, "
                    f"enrichment {row['enrichment_us']:.2f} us"
                )
    return {"exports": EXPORTS, "rows": rows, "figures": [f.to_json() for f in figures]}


def _size_tag(size: int) -> str:
    return f"{size // 1024}K" if size >= 1024 else f"{size}B"


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")


def _cases(value: str) -> str:
    """`--cases` names known cases."""
    unknown = set(value.split(",")) - set(CASES)
    if unknown:
        raise typer.BadParameter(f"unknown cases {sorted(unknown)}; known: {', '.join(CASES)}")
    return value


@app.command(help=__doc__)
def location(
    quick: Annotated[bool, typer.Option("--quick", help="Small batches, once: seconds.")] = False,
    cases: Annotated[
        str, typer.Option(callback=_cases, help=f"Comma-separated, of {','.join(CASES)}.")
    ] = ",".join(CASES),
) -> None:
    measure(Scale.small() if quick else Scale.full(), cases=tuple(cases.split(",")))


if __name__ == "__main__":
    app(prog_name="python -m bench.location")
