"""The export of one Event Hub batch: read, route, write each destination file once, record.

Nothing here raises for a customer's destination: a write that finally fails sends its signals to the
backlog. Only a failure of the service's own storage (ledger, backlog, dead letters) raises, so that
the trigger's retry policy runs the whole batch again, which is safe: every write is idempotent.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azure.storage.blob import ContainerClient

from shared.backlog import BacklogFile, keep, mark_uncertain
from shared.deadletter import DeadLetters
from shared.delivery import FileSink, FileState, Line, deliver
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


@dataclass(frozen=True, slots=True)
class _Work:
    export: Export
    target: FileTarget
    lines: list[Line]


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
        self._reader = SignalReader()
        self._clock = clock

    def export(self, batch: EventBatch) -> BatchReport:
        report = BatchReport(batch.partition, received=len(batch.events))
        if not batch.events:
            return report
        signals: list[Signal] = []
        rejections: list[Rejection] = []
        for event in batch.events:
            result = self._reader.read(event)
            (signals if isinstance(result, Signal) else rejections).append(result)  # type: ignore[arg-type]
        report.signals = len(signals)
        report.dead_lettered = self._dead_letters.put(batch.partition, rejections)
        for rejection in rejections:
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
            fresh = _after(work.lines, before)
            written[work.export.key][work.target.key] = FileRecord(state, work.target.bucket_end.timestamp())
            tally.writes_ok += 1
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
        for signal in signals:
            for export in self._exports_of(signal.project_id):
                if not export.enabled or not export.selects(signal.name):
                    continue
                if export.status is ExportStatus.DISABLED:
                    report.exports[export.key].dropped += 1
                    continue
                target = file_for(export, signal.name, signal.enqueued, partition)
                work = groups.get((export.key, target.key))
                if work is None:
                    work = groups[(export.key, target.key)] = _Work(export, target, [])
                work.lines.append(Line(signal.sequence, signal.line))
        live = [w for w in groups.values() if w.export.status is ExportStatus.ACTIVE]
        held = [w for w in groups.values() if w.export.status is ExportStatus.POSTPONED]
        return live, held

    def _write_live(self, work: _Work, state: FileState | None) -> FileState:
        sink = self._sink_for(work.export.destination)
        return write_with_retry(
            lambda: deliver(sink, work.target.path, work.lines, state), deadline=self._write_deadline
        )


def _after(lines: Sequence[Line], state: FileState | None) -> list[Line]:
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
