"""The export of one Event Hub batch, in plain steps:

1. **read** the bodies into signal lines, grouped by project, name and minute (shared.signals); what is
   not a signal is dead-lettered;
2. **plan** which file of which export takes which lines (pure, and kept across batches while the
   exports stay the same);
3. **write** each live file once, all files at once (shared.delivery through shared.fanout); a file held
   by an earlier failure is caught up: its backlog, then the batch's signals, at the held position;
4. **hold** what could not be written: the file is held where its write failed, and its signals go to
   the backlog (shared.backlog);
5. **record** every file's new state, and the counts they imply, in the ledger: one transaction.

Errors are classified where they arise. A customer's storage failing is the customer's cause
(shared.outcomes): the signals go to the backlog and health judges it. An error of the service's own
(a bug) is contained to the file it happened in: its signals go to the backlog too, counted as the
service's fault and never as the customer's, and the rest of the batch goes on. Only a failure of the
service's own storage (ledger, backlog, dead letters) raises, so that the trigger's retry policy runs
the batch again, which is safe: every write is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from shared.backlog import BacklogFile, BacklogSink, backlog_lines, parse_backlog_line
from shared.counters import Counters
from shared.deadletter import DeadLetterStore
from shared.delivery import (
    EMPTY,
    FORGOTTEN,
    FileSink,
    FileState,
    Forgotten,
    Line,
    Payloads,
    Progress,
    Record,
    deliver,
    lines_after,
    merged,
)
from shared.destinations import write_with_retry
from shared.fanout import Fanout
from shared.layout import FileTarget, file_for
from shared.ledger import (
    ExportKey,
    ExportUpdate,
    FileRecord,
    FileUpdate,
    Hold,
    LedgerConflict,
    LedgerEntry,
    PartitionLedger,
)
from shared.location import Enrichments, Locator, comparison
from shared.model import Destination, Export, ExportStatus
from shared.outcomes import WriteFailure, is_storage_error
from shared.signals import Group, IncomingEvent, Rejection, RejectReason, SignalReader

log = logging.getLogger("signals_export.pipeline")

SET_ASIDE_AFTER = 3
"""Attempts at a batch that fails on an error of the service's own before it is set aside."""

FORGET_AFTER = timedelta(minutes=5)
"""Ledger records of files whose bucket ended this long before a batch's first signal are forgotten:
a partition's signals come in order, so none of theirs can come again (a little slack for clocks)."""


@dataclass(frozen=True, slots=True)
class EventBatch:
    """The events of one trigger invocation: all from one partition, in ascending sequence order (the
    order Event Hubs delivers them in; shared.eventhub makes sure of it)."""

    partition: str
    events: Sequence[IncomingEvent]


@dataclass
class BatchReport:
    """What one batch did, for logs, telemetry and health: per export, what the batch attempted."""

    partition: str
    received: int = 0
    signals: int = 0
    dead_lettered: int = 0
    exports: dict[ExportKey, Counters] = field(default_factory=lambda: defaultdict(Counters))
    # Dead letters by (project id, or "" when the event has none; reason).
    dead_letter_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    faults: int = 0  # files whose write met an error of the service's own
    # Signals of exports that ask for locations, by export and outcome (shared.location.Outcome).
    located: dict[ExportKey, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


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
    owner: str  # the mark of the files the export's writer for this partition creates


@dataclass(slots=True)
class _Work:
    """One destination file's part of a batch."""

    file: _File
    groups: list[list[Line]]  # the lines of each group it takes
    lines: list[Line]  # those merged in sequence order

    @property
    def export(self) -> Export:
        return self.file.export


@dataclass(frozen=True, slots=True)
class _Plan:
    """A group's exports and files, worked out once per group and reused by later batches. `exports` is
    the list it was made from: another list means the exports were read again, and the plan is redone."""

    exports: list[Export]
    files: list[_File]
    dropped: list[ExportKey]  # disabled exports that select the group's signals


_PLANS_KEPT = 4096


@dataclass
class _Written:
    """A live write that succeeded. A catch-up also says up to which signal the backlog held: those
    were counted as backlogged when they were kept, and are not counted again."""

    state: FileState
    held_through: int | None = None


@dataclass
class _Failed:
    """A live write that did not succeed: the customer's cause, or a fault of ours, and where the file
    stood (the position the write was aimed at, where the file is held)."""

    at: FileState | None
    failure: WriteFailure | None = None
    fault: BaseException | None = None


_Outcome = _Written | Forgotten | _Failed
_Files = list[tuple[_Work, FileRecord | None]]
_Holds = list[tuple[_Work, _Failed | FileRecord | None]]


class _Authority:
    """The ledger's fresh word on an export's files, read at most once per export per batch, and only
    when delivery meets a surprise (shared.delivery)."""

    def __init__(self, ledger: PartitionLedger) -> None:
        self._ledger = ledger
        self._entries: dict[ExportKey, LedgerEntry] = {}
        self._lock = threading.Lock()

    def of(self, export_key: ExportKey, file_key: str, bucket_end: float) -> Callable[[], Record]:
        def read() -> Record:
            with self._lock:
                entry = self._entries.get(export_key)
                if entry is None:
                    entry = self._entries[export_key] = self._ledger.fresh(export_key)
            found = entry.lookup(file_key, bucket_end)
            return found.state if isinstance(found, FileRecord) else found

        return read


class Exporter:
    """Exports batches. One per process; it keeps the ledgers of the partitions it has seen."""

    def __init__(
        self,
        *,
        exports_of: Callable[[str], list[Export]],
        ledger_for: Callable[[str], PartitionLedger],
        sink_for: Callable[[Destination], FileSink],
        backlog: BacklogSink,
        dead_letters: DeadLetterStore,
        write_deadline: float = 20.0,
        writers: Fanout | None = None,
        clock: Callable[[], float] = time.time,
        locator: Callable[[], Locator] = lambda: Locator(None),
    ) -> None:
        self._locator = locator
        self._exports_of = exports_of
        self._ledger_for = ledger_for
        self._sink_for = sink_for
        self._backlog = backlog
        self._dead_letters = dead_letters
        self._write_deadline = write_deadline
        self._writers = writers or Fanout(16, "export-write")
        self._readers = threading.local()
        self._clock = clock
        self._plans: dict[tuple[str, Group], _Plan] = {}
        self._faulted: tuple[tuple[str, int, int] | None, int] = (None, 0)  # the last batch that faulted

    @property
    def reader(self) -> SignalReader:
        """One SignalReader (one simdjson parser) per thread: a parser cannot serve two batches at once,
        and the worker may run invocations in several threads (PYTHON_THREADPOOL_THREAD_COUNT)."""
        reader: SignalReader | None = getattr(self._readers, "reader", None)
        if reader is None:
            reader = self._readers.reader = SignalReader()
        return reader

    def export(self, batch: EventBatch) -> BatchReport:
        """Export a batch. An error of the service's own that the per-file boundary did not contain
        raises, so that the trigger retries the batch; when the same batch has failed so
        SET_ASIDE_AFTER times in this instance, its events are set aside as dead letters (reason
        `service-fault`, kept whole for an operator to send again) and the partition moves on: a bug
        must not stop every project's signals behind it. Failures of the service's own storage always
        raise (the batch must wait for it)."""
        try:
            report = self._export(batch)
        except Exception as error:
            if is_storage_error(error) or isinstance(error, LedgerConflict) or not batch.events:
                raise
            position = (batch.partition, batch.events[0].sequence, batch.events[-1].sequence)
            failed = self._faulted[1] + 1 if self._faulted[0] == position else 1
            self._faulted = (position, failed)
            if failed < SET_ASIDE_AFTER:
                raise
            return self._set_aside(batch, error)
        return report

    def _set_aside(self, batch: EventBatch, error: Exception) -> BatchReport:
        log.error(
            "batch set aside as dead letters after repeated faults of the service",
            exc_info=error,
            extra={"partition": batch.partition, "events": len(batch.events)},
        )
        detail = f"the service failed on this event's batch {SET_ASIDE_AFTER} times ({type(error).__name__})"
        report = BatchReport(batch.partition, received=len(batch.events), faults=len(batch.events))
        rejections = [Rejection(event, RejectReason.SERVICE_FAULT, detail) for event in batch.events]
        report.dead_lettered = self._dead_letters.put(batch.partition, rejections)
        for rejection in rejections:
            report.dead_letter_reasons[(rejection.event.project_id or "", rejection.reason.value)] += 1
        return report

    def _export(self, batch: EventBatch) -> BatchReport:
        report = BatchReport(batch.partition, received=len(batch.events))
        if not batch.events:
            return report
        groups = self._read(batch, report)
        works, dropped = self._works(groups, batch.partition, report)
        ledger = self._ledger_for(batch.partition)
        ledger.begin(batch.events[0].sequence)
        entries = ledger.entries()
        authority = _Authority(ledger)
        updates: dict[ExportKey, ExportUpdate] = defaultdict(ExportUpdate)
        for export_key, sequences in dropped.items():
            updates[export_key].dropped.extend(sequences)
            report.exports[export_key].dropped += len(sequences)
        live, catching, held = self._triage(works, entries)
        if catching:
            wanted = _by_export((work.export.key, work.file.key) for work, _ in catching)
            claimed = ledger.claim(wanted, now=self._clock())  # before `now`: a hold is later
            for work, _ in catching:
                record = claimed[work.export.key][work.file.key]
                if record is not None and record.hold is Hold.CLOSED:
                    held.append((work, record))  # the replay took the backlog over meanwhile
                else:
                    live.append((work, record))  # a catch-up, or no longer held
        encoded = Payloads()
        outcomes = self._writers.run(
            [
                partial(self._write_live, work, record, authority, encoded, batch.partition)
                for work, record in live
            ]
        )
        now = self._clock()  # one time for the batch: claims, holds and counters
        for (work, record), outcome in zip(live, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome  # not an Exception (those are contained): the process is stopping
            failed = self._account(work, record, outcome, encoded, updates, report, now)
            if failed is not None:
                held.append((work, failed))
        for work, at in held:
            self._hold(work, at, entries, authority, updates, report, batch.partition, now)
        ledger.record(updates, horizon=_horizon(batch, groups), last_sequence=batch.events[-1].sequence)
        return report

    # 1. read

    def _read(self, batch: EventBatch, report: BatchReport) -> dict[Group, list[Line]]:
        groups, rejections = self.reader.group(batch.events)
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
        return groups

    # 2. plan

    def _works(
        self, groups: dict[Group, list[Line]], partition: str, report: BatchReport
    ) -> tuple[list[_Work], dict[ExportKey, list[int]]]:
        """The files the batch writes, with their lines (enriched with locations for the exports that
        ask: once per list of lines and option); and the signals of disabled exports."""
        works: dict[tuple[ExportKey, str], _Work] = {}
        dropped: dict[ExportKey, list[int]] = defaultdict(list)
        enrichments: Enrichments | None = None
        for key, group in groups.items():
            plan = self._plan(key, partition)
            for export_key in plan.dropped:
                dropped[export_key].extend(sequence for sequence, _ in group)
            for file in plan.files:
                lines = group
                option = file.export.location
                if option is not None:
                    enrichments = enrichments or Enrichments(self._locator())
                    lines, outcomes = enrichments(group, option)
                    report.located[file.export.key].update(outcomes)
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
        return list(works.values()), dropped

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
                _File(
                    export,
                    target,
                    file_key,
                    target.bucket_end.timestamp(),
                    (export.key, file_key),
                    export.owner(partition),
                )
            )
        plan = _Plan(exports, files, dropped)
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()  # old minutes: cheaper to start again than to track age
        self._plans[(partition, key)] = plan
        return plan

    @staticmethod
    def _triage(works: list[_Work], entries: dict[ExportKey, LedgerEntry]) -> tuple[_Files, _Files, _Holds]:
        """Live writes; held files a live writer may catch up (append the backlog, then its own
        signals: claimed first); and files to hold: a postponed export's, or one the replay closed.
        A file of a bucket the ledger forgot is none of these: its signals were written long ago."""
        live: _Files = []
        catching: _Files = []
        held: _Holds = []
        for work in works:
            entry = entries.get(work.export.key)
            found = entry.lookup(work.file.key, work.file.ends) if entry is not None else None
            if found is FORGOTTEN:
                continue
            record = found if isinstance(found, FileRecord) else None
            closed = record is not None and record.hold is Hold.CLOSED
            if work.export.status is ExportStatus.POSTPONED or closed:
                held.append((work, record))
            elif record is not None and record.held:
                catching.append((work, record))
            else:
                live.append((work, record))
        return live, catching, held

    # 3. write

    def _write_live(
        self,
        work: _Work,
        record: FileRecord | None,
        authority: _Authority,
        encoded: Payloads,
        partition: str,
    ) -> _Outcome:
        export, file = work.export, work.file
        progress = Progress()
        try:
            sink = self._sink_for(export.destination)
            lines: Sequence[Line] = work.lines
            held_through = None
            if record is not None and record.held:
                lines, held_through = self._with_backlog(work, record, partition)
            written = write_with_retry(
                lambda: deliver(
                    sink,
                    file.target.path,
                    lines,
                    record.state if record is not None else None,
                    owner=file.owner,
                    authority=authority.of(export.key, file.key, file.ends),
                    encoded=encoded,
                    progress=progress,
                    same=comparison(export.location),
                ),
                deadline=self._write_deadline,
            )
            return written if written is FORGOTTEN else _Written(written, held_through)
        except WriteFailure as failure:
            return _Failed(progress.state, failure=failure)
        except Exception as error:  # noqa: BLE001  # a fault of ours: contained to this file
            return _Failed(progress.state, fault=error)

    def _with_backlog(self, work: _Work, record: FileRecord, partition: str) -> tuple[list[Line], int]:
        """A catch-up's lines: what the held file's backlog files hold that its record does not (once per
        sequence number: two owners may have held it at different positions), then the batch's signals
        after those; and the last signal the backlog holds."""
        held: dict[int, bytes] = {}
        prefix = BacklogFile(work.export, work.file.target, partition, record.state).prefix
        for path in self._backlog.names(prefix):
            length = self._backlog.length(path) or 0
            rows = self._backlog.read(path, 0, length).split(b"\n")[:-1] if length else []
            for sequence, data in map(parse_backlog_line, rows):
                if sequence > record.state.last_sequence:
                    held.setdefault(sequence, data)
        lines = sorted(held.items())
        last = lines[-1][0] if lines else record.state.last_sequence
        return [*lines, *lines_after(work.lines, FileState(0, last))], last

    def _account(
        self,
        work: _Work,
        record: FileRecord | None,
        outcome: _Outcome,
        encoded: Payloads,
        updates: dict[ExportKey, ExportUpdate],
        report: BatchReport,
        now: float,
    ) -> _Failed | None:
        """Record a live write's outcome; return the failure when the file must be held."""
        if outcome is FORGOTTEN:
            return None
        update, seen = updates[work.export.key], report.exports[work.export.key]
        if isinstance(outcome, _Written):
            file_update = written(work.lines, outcome.state, outcome.held_through, work.file.ends, now)
            file_update.payload_bytes = encoded.size(file_update.lines)
            update.files[work.file.key] = file_update
            tally = tally_written(file_update.lines, record.state if record is not None else None, now)
            if tally.exported and not tally.exported_bytes:  # every line fresh: the payload's length
                size = encoded.size(file_update.lines)
                tally.exported_bytes = (
                    size if size is not None else sum(len(d) + 1 for _, d in file_update.lines)
                )
            update.attempts.add(tally, signals=False)
            seen.add(tally)
            return None
        assert isinstance(outcome, _Failed)
        tally = tally_failed(len(work.lines), outcome.failure, now)
        update.attempts.add(tally)
        seen.add(tally)
        if outcome.failure is not None:
            _log_failure(work, outcome.failure)
        else:
            report.faults += 1
            _log_fault(work, outcome.fault)
        if outcome.at is None and record is not None:
            outcome.at = record.state
        return outcome

    # 4. hold

    def _hold(
        self,
        work: _Work,
        at: _Failed | FileRecord | None,
        entries: dict[ExportKey, LedgerEntry],
        authority: _Authority,
        updates: dict[ExportKey, ExportUpdate],
        report: BatchReport,
        partition: str,
        now: float,
    ) -> None:
        """Hold the file and keep its signals in the backlog, exactly once.

        A file already held stays held where it was: the backlog file of that position takes every
        later signal, so what a catch-up or the replay finds at the position is one run of them."""
        export, file = work.export, work.file
        record = entries[export.key].files.get(file.key) if export.key in entries else None
        if record is not None and record.held:
            hold = Hold.CLOSED if record.hold is Hold.CLOSED else Hold.HELD
            state = record.state
        else:
            hold = Hold.HELD
            state = (at.at if isinstance(at, _Failed) else at.state if at is not None else None) or EMPTY
        update = updates[export.key]
        update.files[file.key] = FileUpdate(FileRecord(state, file.ends, hold, now), work.lines)
        backlog = BacklogFile(export, file.target, partition, state)
        entry = entries.get(export.key)
        found = entry.lookup(backlog.ledger_key, file.ends) if entry is not None else None
        if found is FORGOTTEN:
            return
        known = found.state if isinstance(found, FileRecord) else None
        lines = lines_after(work.lines, state)
        kept = deliver(
            self._backlog,
            backlog.path,
            backlog_lines(lines),
            known,
            owner=file.owner,
            authority=authority.of(export.key, backlog.ledger_key, file.ends),
            same=comparison(export.location),
        )
        if kept is FORGOTTEN:
            return
        update.files[backlog.ledger_key] = FileUpdate(
            FileRecord(kept, file.ends, of=file.key, at=state.length), lines, backlog=True
        )
        report.exports[export.key].backlogged += len(lines_after(lines, known))


def written(
    lines: Sequence[Line], state: FileState, held_through: int | None, bucket_end: float, now: float
) -> FileUpdate:
    """A successful write's record for the ledger, with the lines it counts. Pure. A catch-up's
    backlog was counted as backlogged when it was kept: only the batch's own signals after it count."""
    counted = lines if held_through is None else lines_after(lines, FileState(0, held_through))
    return FileUpdate(FileRecord(state, bucket_end, Hold.LIVE, now), counted)


def tally_written(lines: Sequence[Line], before: FileState | None, now: float) -> Counters:
    """What a successful write adds to the batch's report (the ledger counts from its records). Pure.
    Signals the file's record already held (a redelivery) are not counted again."""
    fresh = lines_after(lines, before)
    exported_bytes = sum(len(data) + 1 for _, data in fresh) if fresh is not lines else 0
    return Counters(exported=len(fresh), exported_bytes=exported_bytes, writes_ok=1, last_success=int(now))


def tally_failed(signals: int, failure: WriteFailure | None, now: float) -> Counters:
    """What a failed write adds: the customer's cause, or (no failure) a fault of the service's own,
    never counted as the customer's. Pure."""
    if failure is None:
        return Counters(faults=signals)
    return Counters(
        writes_failed=1,
        failed={failure.cause.value: signals},
        last_failure=int(now),
        last_error=failure.code,
    )


def _log_fault(work: _Work, fault: BaseException | None) -> None:
    log.error(
        "fault in the export path; the file's signals are kept in the backlog",
        exc_info=fault,
        extra={
            "project_id": work.export.project_id,
            "export_id": work.export.export_id,
            "signals": len(work.lines),
        },
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


def _by_export(pairs: Iterable[tuple[ExportKey, str]]) -> dict[ExportKey, list[str]]:
    grouped: dict[ExportKey, list[str]] = defaultdict(list)
    for export_key, file_key in pairs:
        grouped[export_key].append(file_key)
    return grouped


def _horizon(batch: EventBatch, groups: dict[Group, list[Line]]) -> float:
    """Files whose bucket ended before this are forgotten by the ledger (see FORGET_AFTER)."""
    minutes = [minute for _, _, minute in groups]
    earliest = datetime.fromtimestamp(min(minutes) * 60, UTC) if minutes else batch.events[0].enqueued
    return (earliest - FORGET_AFTER).timestamp()
