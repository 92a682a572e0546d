"""The export of one Event Hub batch: read, route, write each destination file once, record.

Nothing here raises for a customer's destination: a write that finally fails sends its signals to the
backlog. Only a failure of the service's own storage (ledger, backlog, dead letters) raises, so that
the trigger's retry policy runs the whole batch again, which is safe: every write is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.storage.blob import ContainerClient

from shared.backlog import BacklogFile, keep, mark_uncertain
from shared.deadletter import DeadLetters
from shared.delivery import FileSink, FileState, LineLike, deliver
from shared.layout import FileTarget, file_for
from shared.ledger import ExportKey, FileRecord, PartitionLedger
from shared.model import Destination, Export, ExportStatus
from shared.outcomes import Cause, WriteFailure
from shared.signals import IncomingEvent, Rejection, Signal, SignalReader
from shared.sinks import AppendBlobSink, write_with_retry

log = logging.getLogger("signals_export.pipeline")


@dataclass(frozen=True, slots=True)
class EventBatch:
    """The events of one trigger invocation: all from one partition, in sequence order."""

    partition: str
    events: Sequence[IncomingEvent]


@dataclass
class ExportTally:
    """What one batch did for one export. Signals already recorded by an earlier delivery of the
    same batch are not counted again."""

    exported: int = 0
    backlogged: int = 0
    dropped: int = 0
    exported_bytes: int = 0
    writes_ok: int = 0
    writes_failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    last_error: str = ""

    def failed(self, failure: WriteFailure, signals: int) -> None:
        self.writes_failed += 1
        self.failures[failure.cause.value] += signals
        self.last_error = failure.code

    def counters(self, now: float) -> dict[str, int]:
        """The tally as the ledger's running counters (`at_*` are times, kept as the latest)."""
        counts = {
            "exported": self.exported,
            "exported_bytes": self.exported_bytes,
            "backlogged": self.backlogged,
            "dropped": self.dropped,
            "writes_ok": self.writes_ok,
            "writes_failed": self.writes_failed,
        }
        counts.update({f"failed_{cause}": n for cause, n in self.failures.items()})
        if self.writes_ok:
            counts["at_last_success"] = int(now)
        if self.writes_failed:
            counts["at_last_failure"] = int(now)
        return counts


@dataclass
class BatchReport:
    """What one batch did, for logs, telemetry and health."""

    partition: str
    received: int = 0
    signals: int = 0
    dead_lettered: int = 0
    exports: dict[ExportKey, ExportTally] = field(default_factory=lambda: defaultdict(ExportTally))
    # Dead letters by (project id, or "" when the event has none; reason).
    dead_letter_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)


@dataclass(slots=True)
class _Work:
    export: Export
    target: FileTarget
    lines: list[LineLike]
    size: int = 0  # bytes of `lines` as written (with their newlines), summed once routing is done


@dataclass(slots=True)
class _Route:
    """Where the signals of one project, name and enqueued minute go in one batch.

    A signal's files depend only on its project, its name and its time bucket, and the shortest bucket
    of any layout is a minute (UTC). So the exports are looked up and the files chosen once per route
    and batch, not once per signal and export: a signal costs one append per export it goes to.
    """

    works: list[_Work] = field(default_factory=list)  # one per (export, file) the signals go to
    targets: list[list[LineLike]] = field(default_factory=list)  # their `lines`, in the same order
    dropped: list[ExportKey] = field(default_factory=list)  # disabled exports that select them
    size: int = 0  # bytes of the route's lines as written (with their newlines)


class Exporter:
    """Exports batches. One per process; it keeps the ledgers of the partitions it has seen."""

    def __init__(
        self,
        *,
        exports_of: Callable[[str], list[Export]],
        ledger_for: Callable[[str], PartitionLedger],
        sink_for: Callable[[Destination], FileSink],
        backlog: ContainerClient,
        dead_letters: DeadLetters,
        write_deadline: float = 20.0,
        pool: Executor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._exports_of = exports_of
        self._ledger_for = ledger_for
        self._sink_for = sink_for
        self._backlog = backlog
        self._backlog_sink = AppendBlobSink(backlog)
        self._dead_letters = dead_letters
        self._write_deadline = write_deadline
        self._pool = pool or ThreadPoolExecutor(max_workers=16, thread_name_prefix="export-write")
        self._readers = threading.local()
        self._clock = clock

    @property
    def _reader(self) -> SignalReader:
        """One SignalReader (one simdjson parser) per thread: a parser cannot serve two batches at once,
        and the worker may run invocations in several threads (PYTHON_THREADPOOL_THREAD_COUNT)."""
        reader: SignalReader | None = getattr(self._readers, "reader", None)
        if reader is None:
            reader = self._readers.reader = SignalReader()
        return reader

    def export(self, batch: EventBatch) -> BatchReport:
        report = BatchReport(batch.partition, received=len(batch.events))
        if not batch.events:
            return report
        signals: list[Signal] = []
        rejections: list[Rejection] = []
        reader = self._reader
        for event in batch.events:
            result = reader.read(event)
            (signals if isinstance(result, Signal) else rejections).append(result)  # type: ignore[arg-type]
        report.signals = len(signals)
        report.dead_lettered = self._dead_letters.put(batch.partition, rejections)
        for rejection in rejections:
            report.dead_letter_reasons[(rejection.event.project_id or "", rejection.reason.value)] += 1
            log.warning(
                "dead-lettered event",
                extra={
                    "partition": batch.partition,
                    "sequence_number": rejection.event.sequence,
                    "project_id": rejection.event.project_id,
                    "reason": rejection.reason.value,
                },
            )
        live, held = self._route(signals, batch.partition, report)
        # A file whose record ends before the batch's first signal takes every line the batch has for it.
        first = min((signal.sequence for signal in signals), default=0)
        ledger = self._ledger_for(batch.partition)
        entries = ledger.entries()

        def state_of(export: Export, file_key: str) -> FileState | None:
            entry = entries.get(export.key)
            return entry.state(file_key) if entry else None

        written: dict[ExportKey, dict[str, FileRecord]] = defaultdict(dict)
        uncertain: set[str] = set()
        running = []
        for work in live:
            before = state_of(work.export, work.target.key)
            running.append((work, before, self._pool.submit(self._write_live, work, before)))
        for work, before, future in running:
            tally = report.exports[work.export.key]
            try:
                state = future.result()
            except WriteFailure as failure:
                tally.failed(failure, len(work.lines))
                if failure.cause in {Cause.TRANSIENT, Cause.THROTTLED}:
                    uncertain.add(work.target.key)
                _log_failure(work, failure)
                held.append(work)
                continue
            written[work.export.key][work.target.key] = FileRecord(state, work.target.bucket_end.timestamp())
            tally.writes_ok += 1
            if first > (before.last_sequence if before is not None else -1):
                tally.exported += len(work.lines)  # the usual case: no line was recorded before
                tally.exported_bytes += work.size
            else:
                fresh = _after(work.lines, before)
                tally.exported += len(fresh)
                tally.exported_bytes += sum(len(line.data) + 1 for line in fresh)
        for work in held:
            # Signals the live file already records (a redelivery) are not kept twice.
            live_state = state_of(work.export, work.target.key)
            lines = _after(work.lines, live_state)
            backlog = BacklogFile(work.export, work.target)
            before = state_of(work.export, backlog.ledger_key)
            state = keep(self._backlog_sink, backlog, lines, before)
            if work.target.key in uncertain:
                # The write may have landed: the replay will look at the live file first.
                mark_uncertain(self._backlog, backlog.path, live_state.length if live_state else 0)
            written[work.export.key][backlog.ledger_key] = FileRecord(
                state, work.target.bucket_end.timestamp()
            )
            report.exports[work.export.key].backlogged += len(_after(lines, before))
        now = self._clock()
        counted = {key: tally.counters(now) for key, tally in report.exports.items()}
        errors = {key: tally.last_error for key, tally in report.exports.items() if tally.last_error}
        earliest = min(event.enqueued for event in batch.events)
        ledger.record(written, counted, keep_after=_keep_after(earliest), errors=errors)
        return report

    def _route(
        self, signals: Sequence[Signal], partition: str, report: BatchReport
    ) -> tuple[list[_Work], list[_Work]]:
        """Group signals by export and destination file; split into live writes and backlog."""
        groups: dict[tuple[ExportKey, str], _Work] = {}
        routes: dict[tuple[str, str, int], _Route] = {}
        for signal in signals:
            minute = int(signal.enqueued.timestamp()) // 60  # the UTC minute, as a number
            key = (signal.project_id, signal.name, minute)
            route = routes.get(key)
            if route is None:
                at = datetime.fromtimestamp(minute * 60, UTC)
                route = routes[key] = self._new_route(signal, at, partition, groups)
            for lines in route.targets:
                lines.append(signal)  # the signal is its own line: nothing is copied per export
            route.size += len(signal.data) + 1
            for export_key in route.dropped:
                report.exports[export_key].dropped += 1
        for route in routes.values():
            for work in route.works:
                work.size += route.size
        live = [w for w in groups.values() if w.export.status is ExportStatus.ACTIVE]
        held = [w for w in groups.values() if w.export.status is ExportStatus.POSTPONED]
        return live, held

    def _new_route(
        self, signal: Signal, minute: datetime, partition: str, groups: dict[tuple[ExportKey, str], _Work]
    ) -> _Route:
        """The exports a signal's route goes to and their files (the minute stands for the signal's
        enqueued time: every layout's bucket holds whole minutes, so it chooses the same file)."""
        route = _Route()
        for export in self._exports_of(signal.project_id):
            if not export.enabled or not export.selects(signal.name):
                continue
            if export.status is ExportStatus.DISABLED:
                route.dropped.append(export.key)
                continue
            target = file_for(export, signal.name, minute, partition)
            work = groups.get((export.key, target.key))
            if work is None:
                work = groups[(export.key, target.key)] = _Work(export, target, [])
            route.works.append(work)
            route.targets.append(work.lines)
        return route

    def _write_live(self, work: _Work, state: FileState | None) -> FileState:
        sink = self._sink_for(work.export.destination)
        return write_with_retry(
            lambda: deliver(sink, work.target.path, work.lines, state), deadline=self._write_deadline
        )


def _after(lines: Sequence[LineLike], state: FileState | None) -> list[LineLike]:
    """The lines a file's recorded state does not hold yet."""
    last = state.last_sequence if state is not None else -1
    return [line for line in lines if line.sequence > last]


def _log_failure(work: _Work, failure: WriteFailure) -> None:
    log.warning(
        "write failed; signals go to the backlog",
        extra={
            "project_id": work.export.project_id,
            "export_id": work.export.export_id,
            "cause": failure.cause.value,
            "error_code": failure.code,
            "signals": len(work.lines),
        },
    )


def _keep_after(earliest: datetime) -> datetime:
    """Ledger records of files whose bucket ended this long before the batch are forgotten."""
    return earliest - timedelta(minutes=10)
