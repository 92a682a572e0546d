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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from azure.storage.blob import ContainerClient

from shared.backlog import BacklogFile, keep, mark_uncertain
from shared.deadletter import DeadLetters
from shared.delivery import FileSink, FileState, Line, deliver, encode, lines_after, merged
from shared.fanout import Fanout
from shared.layout import FileTarget, file_for
from shared.ledger import ExportKey, FileRecord, PartitionLedger
from shared.model import Destination, Export, ExportStatus
from shared.outcomes import Cause, WriteFailure
from shared.signals import Group, IncomingEvent, SignalReader
from shared.sinks import AppendBlobSink, write_with_retry

log = logging.getLogger("signals_export.pipeline")


@dataclass(frozen=True, slots=True)
class EventBatch:
    """The events of one trigger invocation: all from one partition, in ascending sequence order (the
    order Event Hubs delivers them in; shared.eventhub makes sure of it)."""

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
        """The tally as additions to the ledger's running counters: only those that change (a missing
        counter reads as 0). `at_*` are times, kept as the latest."""
        counts = {
            "exported": self.exported,
            "exported_bytes": self.exported_bytes,
            "backlogged": self.backlogged,
            "dropped": self.dropped,
            "writes_ok": self.writes_ok,
            "writes_failed": self.writes_failed,
            **{f"failed_{cause}": n for cause, n in self.failures.items()},
            "at_last_success": int(now) if self.writes_ok else 0,
            "at_last_failure": int(now) if self.writes_failed else 0,
        }
        return {name: value for name, value in counts.items() if value}


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


# Routing: a signal's files depend only on its group (project, name, enqueued minute: shared.signals).
# So a signal costs one append, to its group; the exports and files are looked up once per group (a
# _Plan, kept across batches), and each file's lines are its groups' lines merged in sequence order,
# once per set of groups: exports that select the same names share one list, and one encoding of it.


@dataclass(frozen=True, slots=True)
class _File:
    """A file an export writes a group's signals to, with what every batch asks of it, worked out once."""

    export: Export
    target: FileTarget
    key: str  # the ledger's name for the file (target.key)
    ends: float  # when its time bucket ends, POSIX seconds
    work: tuple[ExportKey, str]  # one _Work per batch has this key


@dataclass(slots=True)
class _Work:
    """One destination file's part of a batch."""

    file: _File
    groups: list[list[Line]]  # the lines of each group it takes
    lines: list[Line]  # those merged in sequence order

    @property
    def export(self) -> Export:
        return self.file.export

    @property
    def target(self) -> FileTarget:
        return self.file.target


@dataclass(frozen=True, slots=True)
class _Plan:
    """A group's exports and files, worked out once per group and reused by later batches. `exports` is
    the list it was made from: another list means the exports were read again, and the plan is redone."""

    exports: list[Export]
    files: list[_File]
    dropped: list[ExportKey]  # disabled exports that select the group's signals


_PLANS_KEPT = 4096


class _Encoded:
    """Payloads of one batch by the list of lines they encode: the files of exports that take the same
    lines (every export of a project that selects the same names) get the same bytes, encoded once.
    Used from the write threads at once; at worst two threads encode the same list twice."""

    def __init__(self) -> None:
        self._payloads: dict[int, tuple[Sequence[Line], bytes]] = {}

    def __call__(self, lines: Sequence[Line]) -> bytes:
        known = self._payloads.get(id(lines))
        if known is not None and known[0] is lines:
            return known[1]
        payload = encode(lines)
        self._payloads[id(lines)] = (lines, payload)  # keeps `lines` alive: its id stays its own
        return payload


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
        writers: Fanout | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._exports_of = exports_of
        self._ledger_for = ledger_for
        self._sink_for = sink_for
        self._backlog = backlog
        self._backlog_sink = AppendBlobSink(backlog)
        self._dead_letters = dead_letters
        self._write_deadline = write_deadline
        self._writers = writers or Fanout(16, "export-write")
        self._readers = threading.local()
        self._clock = clock
        self._plans: dict[tuple[str, Group], _Plan] = {}

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
        groups, rejections = self._reader.group(batch.events)
        report.signals = len(batch.events) - len(rejections)
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
        live, held = self._works(groups, batch.partition, report)
        ledger = self._ledger_for(batch.partition)
        entries = ledger.entries()

        def state_of(export: Export, file_key: str) -> FileState | None:
            entry = entries.get(export.key)
            return entry.state(file_key) if entry else None

        written: dict[ExportKey, dict[str, FileRecord]] = defaultdict(dict)
        uncertain: set[str] = set()
        encoded = _Encoded()
        befores = [state_of(work.export, work.file.key) for work in live]
        outcomes = self._writers.run(
            [
                partial(self._write_live, work, before, encoded)
                for work, before in zip(live, befores, strict=True)
            ]
        )
        for work, before, state in zip(live, befores, outcomes, strict=True):
            tally = report.exports[work.export.key]
            if isinstance(state, WriteFailure):
                tally.failed(state, len(work.lines))
                if state.cause in {Cause.TRANSIENT, Cause.THROTTLED}:
                    uncertain.add(work.file.key)
                _log_failure(work, state)
                held.append(work)
                continue
            if isinstance(state, BaseException):
                raise state  # not a destination's failure: a fault of ours, the batch is retried
            written[work.export.key][work.file.key] = FileRecord(state, work.file.ends)
            tally.writes_ok += 1
            fresh = lines_after(work.lines, before)
            if fresh is work.lines:
                tally.exported += len(work.lines)  # the usual case: no line was recorded before
                tally.exported_bytes += len(encoded(work.lines))  # encoded for the write: a lookup
            else:
                tally.exported += len(fresh)
                tally.exported_bytes += sum(len(data) + 1 for _, data in fresh)
        for work in held:
            # Signals the live file already records (a redelivery) are not kept twice.
            live_state = state_of(work.export, work.file.key)
            lines = lines_after(work.lines, live_state)
            backlog = BacklogFile(work.export, work.target)
            before = state_of(work.export, backlog.ledger_key)
            state = keep(self._backlog_sink, backlog, lines, before)
            if work.file.key in uncertain:
                # The write may have landed: the replay will look at the live file first.
                mark_uncertain(self._backlog, backlog.path, live_state.length if live_state else 0)
            written[work.export.key][backlog.ledger_key] = FileRecord(state, work.file.ends)
            report.exports[work.export.key].backlogged += len(lines_after(lines, before))
        now = self._clock()
        counted = {key: tally.counters(now) for key, tally in report.exports.items()}
        errors = {key: tally.last_error for key, tally in report.exports.items() if tally.last_error}
        ledger.record(written, counted, keep_after=_keep_after(batch, groups), errors=errors)
        return report

    def _works(
        self, groups: dict[Group, list[Line]], partition: str, report: BatchReport
    ) -> tuple[list[_Work], list[_Work]]:
        """The files the batch writes, with their lines, split into live writes and backlog. Signals
        for disabled exports are counted as dropped."""
        works: dict[tuple[ExportKey, str], _Work] = {}
        for key, lines in groups.items():
            plan = self._plan(key, partition)
            for export_key in plan.dropped:
                report.exports[export_key].dropped += len(lines)
            for file in plan.files:
                work = works.get(file.work)
                if work is None:
                    works[file.work] = _Work(file, [lines], lines)
                else:
                    work.groups.append(lines)
        shared_lines: dict[tuple[int, ...], list[Line]] = {}
        for work in works.values():
            if len(work.groups) == 1:
                continue  # its lines are its one group's
            sources = tuple(map(id, work.groups))
            known = shared_lines.get(sources)
            if known is None:
                known = shared_lines[sources] = merged(work.groups)
            work.lines = known
        live = [w for w in works.values() if w.export.status is ExportStatus.ACTIVE]
        held = [w for w in works.values() if w.export.status is ExportStatus.POSTPONED]
        return live, held

    def _plan(self, key: Group, partition: str) -> _Plan:
        """The exports and files of a group, remembered while the project's exports stay the same:
        a busy partition writes the same few groups in every batch of a minute."""
        project_id, name, minute = key
        exports = self._exports_of(project_id)
        plan = self._plans.get((partition, key))
        if plan is not None and plan.exports is exports:
            return plan
        at = datetime.fromtimestamp(minute * 60, UTC)  # stands for the signals' times: see Group
        files: list[_File] = []
        dropped: list[ExportKey] = []
        for export in exports:
            if not export.enabled or not export.selects(name):
                continue
            if export.status is ExportStatus.DISABLED:
                dropped.append(export.key)
                continue
            target = file_for(export, name, at, partition)
            file_key = target.key
            files.append(
                _File(export, target, file_key, target.bucket_end.timestamp(), (export.key, file_key))
            )
        plan = _Plan(exports, files, dropped)
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()  # old minutes: cheaper to start again than to track age
        self._plans[(partition, key)] = plan
        return plan

    def _write_live(self, work: _Work, state: FileState | None, encoded: _Encoded) -> FileState:
        sink = self._sink_for(work.export.destination)
        return write_with_retry(
            lambda: deliver(sink, work.target.path, work.lines, state, encoded), deadline=self._write_deadline
        )


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


def _keep_after(batch: EventBatch, groups: dict[Group, list[Line]]) -> datetime:
    """Ledger records of files whose bucket ended this long before the batch are forgotten."""
    minutes = [minute for _, _, minute in groups]
    earliest = datetime.fromtimestamp(min(minutes) * 60, UTC) if minutes else batch.events[0].enqueued
    return earliest - timedelta(minutes=10)
