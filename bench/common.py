"""What every measurement shares: the run's scale, paired timing, figures, and signal bodies."""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.pipeline import EventBatch
from shared.signals import IncomingEvent

NAMES = ("pageView", "request", "dependency", "exception")
SELECTED = frozenset({"pageView", "request"})  # what a filtering export selects: half the names
BATCH_EVENTS = 512  # host.json maxEventBatchSize: a busy partition's batch
START = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)  # enqueued times of generated batches start here


@dataclass(frozen=True)
class Scale:
    """How much each measurement does: the full run, or the quick one (CI, a few seconds)."""

    quick: bool
    cpu_exports: tuple[int, ...] = (1, 10, 100)
    cpu_sizes: tuple[int, ...] = (200, 1024, 16 * 1024)
    cpu_repeats: int = 7
    cpu_sample_seconds: float = 0.25  # each timed sample runs whole batches for at least this long
    cpu_batch_events: int = BATCH_EVENTS
    request_batches: int = 6
    request_repeats: int = 3
    e2e_hold_seconds: float = 60.0  # the confirmation run at the highest rate found
    e2e_step_seconds: float = 8.0  # each step of the rate search
    e2e_steps: int = 8  # at most, before the hold
    e2e_saturation_batches: int = 24
    e2e_repeats: int = 3
    replay_signals: int = 20_000
    replay_repeats: int = 3
    cold_repeats: int = 5
    memory_signals: int = 1000
    memory_signal_bytes: int = 64 * 1024
    memory_repeats: int = 3
    scale_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)  # exports stored
    scale_minutes: int = 4  # measured minutes, idle and active
    scale_signals: int = 5  # signals a minute per active export

    @classmethod
    def full(cls) -> Scale:
        return cls(quick=False)

    @classmethod
    def small(cls) -> Scale:
        return cls(
            quick=True,
            cpu_repeats=1,
            cpu_sample_seconds=0.0,
            cpu_batch_events=64,
            request_batches=2,
            request_repeats=1,
            e2e_hold_seconds=5.0,
            e2e_step_seconds=0.5,
            e2e_saturation_batches=2,
            e2e_repeats=1,
            e2e_steps=2,
            replay_signals=1000,
            replay_repeats=1,
            cold_repeats=1,
            memory_signals=100,
            memory_repeats=1,
            scale_sizes=(1_000, 10_000),
            scale_minutes=2,
        )


@dataclass
class Figure:
    """One number of the report, with the reference it was measured against (if it has one)."""

    id: str
    label: str
    value: float
    unit: str
    samples: list[float] = field(default_factory=list)
    reference: str | None = None  # the id of the figure it is compared with
    ratio: float | None = None  # median of the pairwise ratios value/reference
    goal: str | None = None  # the goal, in words, when the issue states one
    met: bool | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != "" and v != []}


def size_tag(size: int) -> str:
    """A signal size as figures' ids and labels spell it: 200B, 1K, 16K."""
    return f"{size // 1024}K" if size >= 1024 else f"{size}B"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank), 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[index])


def paired(measures: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each measure once per round, rotating which goes first, `repeats` rounds; the samples."""
    names = list(measures)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measures[name]())
    return samples


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Pairwise a/b for samples measured round by round."""
    return [x / y for x, y in zip(a, b, strict=True) if y]


def _compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def body(name: str, index: int, size: int) -> bytes:
    """A signal body of `size` bytes (or the smallest it can be, ~130): an Application Insights-like
    JSON object, compact, with properties and measurements, padded to the size. Distinct per index."""
    document: dict[str, Any] = {
        "name": name,
        "time": (START + timedelta(milliseconds=index)).isoformat().replace("+00:00", "Z"),
        "seq": index,
        "data": {"baseType": f"{name}Data", "baseData": {"properties": {}, "measurements": {}}},
    }
    base = document["data"]["baseData"]
    if len(_compact(document)) + 80 < size:
        document["tags"] = {"ai.cloud.role": "checkout", "ai.operation.id": f"{index:032x}"}
    pair = len(_compact({"p0000": "v" * 60, "m0000": 100.5})) - 1  # what a property and measurement add
    count = max(0, (size - len(_compact(document)) - 40) // pair)
    for key in range(count):
        base["properties"][f"p{key:04d}"] = "v" * 60
        base["measurements"][f"m{key:04d}"] = key + 0.5
    base["properties"]["pad"] = ""
    while count and len(_compact(document)) > size:
        count -= 1
        del base["properties"][f"p{count:04d}"], base["measurements"][f"m{count:04d}"]
    gap = size - len(_compact(document))
    base["properties"]["pad"] = "x" * max(0, gap)
    return _compact(document)


def bodies(count: int, size: int) -> list[bytes]:
    """`count` distinct bodies of `size` bytes, names in turn."""
    return [body(NAMES[i % len(NAMES)], i, size) for i in range(count)]


class Template:
    """Bodies made fast (a producer thread makes thousands a second): one pre-built body per name with
    a fixed-width id first, so each body is distinct and its id can be read back from its line."""

    ID = b'{"id":"'

    def __init__(self, size: int) -> None:
        self._formats = [
            body(name, 0, size - 20)
            .replace(b"{", b'{"id":"%012d",', 1)
            .replace(b"%", b"%%")
            .replace(b"%%012d", b"%012d", 1)
            for name in NAMES
        ]

    def make(self, index: int) -> bytes:
        return self._formats[index % len(NAMES)] % index

    @classmethod
    def id_of(cls, line: bytes) -> int:
        return int(line[len(cls.ID) : len(cls.ID) + 12])


def event_batch(
    partition: str,
    project: str,
    payloads: Sequence[bytes],
    first_sequence: int,
    start: datetime = START,
    step: timedelta = timedelta(milliseconds=1),
) -> EventBatch:
    """An EventBatch as `shared.eventhub.batch_from_trigger` makes it, without the worker's decoding."""
    events = [
        IncomingEvent(payload, first_sequence + i, start + step * (first_sequence + i), project)
        for i, payload in enumerate(payloads)
    ]
    return EventBatch(partition, events)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


@contextmanager
def no_faults(what: str) -> Iterator[None]:
    """Fail the measurement if the service logged an error meanwhile: a fault is contained (its
    signals go to the backlog), so a stand-in the service no longer fits would otherwise be timed as
    the fault path, and the figures would look plausible."""
    errors = _Errors()
    logger = logging.getLogger("signals_export")
    logger.addHandler(errors)
    try:
        yield
    finally:
        logger.removeHandler(errors)
    if errors.messages:
        count = len(errors.messages)
        raise AssertionError(f"{what}: the service logged {count} errors, first: {errors.messages[0]}")
