"""7. Location enrichment: `Exporter.export` with the location option against without, 10 exports.

Both run as section 1 runs the export path (storage that does no I/O, the real ledger over a table that
answers at once, writes in the exporter's threads), in signals per CPU second, side by side, round by
round, each on fresh batches of the same bodies and with its own sequence numbers (its batches follow
one another, as a partition's do):

- `without`: 10 hourly ADLS Gen2 exports of one project (section 1's: even ones take every signal, odd
  ones half the names);
- `with`: the same exports with the location option, the pipeline enriching each group of lines once
  per distinct option of the exports that take it, against a City database the benchmark writes
  (mmdb-writer, invented places) read by `shared.geo.GeoDatabase`.

`with / without` is the export path's throughput with enrichment against without: the issue's goal
at 10 exports is at least x0.5. Three cases: every export with the same option and clients that come
back (a pool of 1,000 addresses: a client sends many signals; the goal's case); every export with its
own option (ten enrichments per signal); every signal from a new client (a database lookup per
signal). Bodies are bench.common's with the client's address as first member (`clientIp`). Before
timing, the enriched exports' bytes are checked equal to the plain exports' with each line enriched
alone (`shared.location.enrich`), and every signal located.
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
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from bench.common import (
    NAMES,
    Figure,
    Scale,
    body,
    event_batch,
    median,
    no_faults,
    paired,
    ratios,
    size_tag,
)
from bench.cpu import PARTITION, PROJECT, MemorySink, exports_for, memory_exporter
from shared.fanout import Fanout
from shared.geo import FileSource, GeoDatabase
from shared.location import Outcome, enrich
from shared.model import Export, LocationOption
from shared.pipeline import EventBatch, Exporter

EXPORTS = 10
GOAL = 0.5
CLIENTS = 1000
OPTION = LocationOption("/clientIp")
CASES = ("same_option", "own_options", "new_clients")
GOAL_CASE = "same_option"
APPROACHES = ("without", "with")


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


class Bodies:
    """Bodies of about `size` bytes, each with its client's address as first member: bench.common's
    bodies (distinct per index), made once, behind the address of any client (fast: the new-clients
    case makes a batch per sample round)."""

    def __init__(self, count: int, size: int) -> None:
        head = len(b'{"clientIp":"' + client(0) + b'",')
        self._rests = [body(NAMES[index % len(NAMES)], index, size - head)[1:] for index in range(count)]

    def make(self, first_client: int, clients: int | None) -> list[bytes]:
        """One body per index, for clients from `first_client` on (in turn from a pool of `clients`,
        or each a new one)."""
        return [
            b'{"clientIp":"'
            + client(first_client + (index if clients is None else index % clients))
            + b'",'
            + rest
            for index, rest in enumerate(self._rests)
        ]


def options_for(case: str, exports: list[Export]) -> list[Export]:
    """The exports of a case with their location options."""
    if case == "own_options":
        own = [LocationOption("/clientIp", key=f"location{i}") for i in range(len(exports))]
        return [replace(e, location=option) for e, option in zip(exports, own, strict=True)]
    return [replace(e, location=OPTION) for e in exports]


class Case:
    """One configuration (signal size, case): the two exporters, their batches and timed runs."""

    def __init__(self, size: int, case: str, scale: Scale, database: GeoDatabase) -> None:
        plain = exports_for(EXPORTS)
        self.exports = {"without": plain, "with": options_for(case, plain)}
        self.size = size
        self.case = case
        self.events = scale.cpu_batch_events
        self.database = database
        self.sinks = {name: MemorySink() for name in APPROACHES}
        self.writers = Fanout(16, "bench-location")
        self.exporters: dict[str, Exporter] = {
            name: memory_exporter(
                self.exports[name], self.sinks[name], self.writers, locator=database.locator
            )
            for name in APPROACHES
        }
        self.next_sequence = {name: 0 for name in APPROACHES}
        self.next_client = 0
        self.bodies = Bodies(self.events, size)
        self.repeat_payloads = self.bodies.make(0, CLIENTS)
        self.batch_bytes = sum(len(p) for p in self.repeat_payloads)
        self.sample_seconds = scale.cpu_sample_seconds
        self.rounds = {name: 1 for name in APPROACHES}

    def close(self) -> None:
        self.writers.close()

    def payloads(self) -> list[bytes]:
        """A batch's bodies: new clients in the new-clients case, else the pool's."""
        if self.case != "new_clients":
            return self.repeat_payloads
        payloads = self.bodies.make(1_000_000 + self.next_client, None)
        self.next_client += self.events
        return payloads

    def batch(self, name: str, payloads: list[bytes] | None = None) -> EventBatch:
        """A fresh batch for an approach, with its next sequence numbers (see bench.cpu.Case.batch)."""
        payloads = self.payloads() if payloads is None else payloads
        batch = event_batch(PARTITION, PROJECT, payloads, self.next_sequence[name])
        self.next_sequence[name] += len(payloads)
        return batch

    def check(self) -> None:
        """The enriched exports write the plain exports' lines, each enriched as `enrich` enriches it
        alone, and every signal is located (the database covers every client)."""
        written: dict[str, dict[str, list[bytes]]] = {}
        payloads = self.payloads()
        for name in APPROACHES:
            sink = self.sinks[name]
            sink.payloads = {}
            self.exporters[name].export(self.batch(name, payloads))
            written[name], sink.payloads = sink.payloads, None
        if set(written["with"]) != set(written["without"]):
            raise AssertionError("the enriched exports wrote other files than the plain ones")
        locator = self.database.locator()
        for index, export in enumerate(self.exports["with"]):
            assert export.location is not None
            paths = [path for path in written["without"] if f"/export{index}/" in f"/{path}"]
            if not paths:
                raise AssertionError(f"{export.export_id} wrote nothing")
            for path in paths:
                expected: list[bytes] = []
                for line in b"".join(written["without"][path]).split(b"\n")[:-1]:
                    enriched, outcome = enrich(line, export.location, locator)
                    if outcome is not Outcome.LOCATED:
                        raise AssertionError(f"a signal of {export.export_id} was not located: {outcome}")
                    expected.append(enriched + b"\n")
                if b"".join(written["with"][path]) != b"".join(expected):
                    raise AssertionError(f"{export.export_id}: the export path's enrichment is not enrich's")

    def calibrate(self) -> None:
        """How many batches one timed sample runs, per approach (at least `sample_seconds` long)."""
        if self.sample_seconds <= 0:
            return  # quick: one batch per sample
        for name in APPROACHES:
            batch = self.batch(name)
            start = time.process_time()
            self.exporters[name].export(batch)
            once = time.process_time() - start
            self.rounds[name] = max(1, math.ceil(self.sample_seconds / max(once, 1e-6)))

    def sample(self, name: str) -> float:
        """Signals per CPU second over one timed sample of fresh batches (see bench.cpu.Case.sample)."""
        rounds = self.rounds[name]
        export = self.exporters[name].export
        batches = [self.batch(name) for _ in range(rounds)]
        gc.collect()
        start = time.process_time()
        for batch in batches:
            export(batch)
        return rounds * self.events / (time.process_time() - start)


def measure(scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        database = GeoDatabase(FileSource(str(write_database(Path(folder) / "bench-city.mmdb"))))
        for size in scale.cpu_sizes:
            for case_name in CASES:
                case = Case(size, case_name, scale, database)
                try:
                    with no_faults(f"location, {size_tag(size)}, {case_name}"):
                        case.check()
                        case.calibrate()
                        runs = {name: partial(case.sample, name) for name in APPROACHES}
                        samples = paired(runs, scale.cpu_repeats)
                finally:
                    case.close()
                row = _row(size, case_name, case, samples)
                rows.append(row)
                figures += _figures(row, samples)
                log(
                    f"  location: {size_tag(size):>4} {case_name:<12} without {row['without']:,.0f}/s, "
                    f"with {row['with']:,.0f}/s (x{row['ratio']:.2f}); per signal: export path "
                    f"{row['export_us']:.2f} us, enrichment {row['enrichment_us']:.2f} us"
                )
        extension = database.extension
    return {
        "exports": EXPORTS,
        "batch_events": scale.cpu_batch_events,
        "repeats": scale.cpu_repeats,
        "extension": extension,
        "rows": rows,
        "figures": [f.to_json() for f in figures],
    }


def _row(size: int, case_name: str, case: Case, samples: dict[str, list[float]]) -> dict[str, Any]:
    without, with_ = median(samples["without"]), median(samples["with"])
    return {
        "size": size,
        "signal_bytes": round(case.batch_bytes / case.events),
        "case": case_name,
        "without": without,
        "with": with_,
        "ratio": median(ratios(samples["with"], samples["without"])),
        "export_us": 1e6 / without,
        "enrichment_us": 1e6 / with_ - 1e6 / without,
        "goal": GOAL if case_name == GOAL_CASE else None,
        "samples": samples,
    }


def _figures(row: dict[str, Any], samples: dict[str, list[float]]) -> list[Figure]:
    tag = f"location.e{EXPORTS}.s{size_tag(row['size'])}.{row['case']}"
    what = f"{EXPORTS} exports, {size_tag(row['size'])}, {row['case']}"
    goal = row["case"] == GOAL_CASE
    return [
        Figure(f"{tag}.without", f"export path, {what}", row["without"], "signals/s", samples["without"]),
        Figure(
            f"{tag}.with",
            f"export path with location, {what}",
            row["with"],
            "signals/s",
            samples["with"],
            reference=f"{tag}.without",
            ratio=row["ratio"],
            note=f"per signal: {row['enrichment_us']:.2f} us enrichment, "
            f"{row['export_us']:.2f} us export path",
        ),
        Figure(
            f"{tag}.ratio",
            f"export path with location / without, {what}",
            row["ratio"],
            "x",
            ratios(samples["with"], samples["without"]),
            reference=f"{tag}.without",
            ratio=row["ratio"],
            goal=f">= {GOAL}" if goal else None,
            met=row["ratio"] >= GOAL if goal else None,
        ),
    ]
