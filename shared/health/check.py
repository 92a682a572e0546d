"""The health check the timer function runs: judge the exports that have something to judge, postpone,
probe, disable, expire backlogs, and have the backlogs of healthy exports replayed.

What a check judges is what the due index says (shared.health.due): exports whose counters moved since
the last check (the export path marks them), exports that changed, exports on the watch list (a
backlog, a postponed export to probe, a state change to finish, an unreadable row) and deadlines that
fall due (the end of a postponed export's retention). An export with nothing of these costs nothing: it
is not read, and the checks it sits out are the empty ticks it would have taken (`HealthRecord.ticks_at`).

One check, in steps:

1. **Begin**: take the next sequence number in the state row `check`, only if the row is as read (two
   timers at once make one check), and not while work items of the previous check are still open
   (unless they are older than `ROUND_TIMEOUT`: a work item that died is given up).
2. **Sweep** a page of the exports table (`SWEEP_PAGE` rows, every `SWEEP_PAGE_SECONDS`): keys sealed
   under an older service key are sealed again, rows that cannot be read are noted on their health
   and watched. After the service keys changed, and on the first check of this version (which makes
   every export due once), pages follow one another within the check's time.
3. **Judge** what is due, projects in parallel, in key order, for `inline_seconds`; what is left is
   shared out as work items by range of projects on the queue `export-health`, which any instance runs
   (`run_item`, the queue function `check_health_range`).
4. **Delete** the rows judged (shared.health.due says which may go).

Judging one export: its record is saved only if unchanged since it was read (`save_if`), so two checks
at once never both act on it. A state change is saved first, as pending, then carried out (the export's
status, the webhook, the replay), then noted in the history: a check killed between two steps leaves the
export watched, and the next check finishes the change.

I/O at the edges (tables, backlog container, probes, webhooks, the queues); the decisions are
shared.health.rules'. What it remembers of each export is shared.health.records'.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

import orjson
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from shared import messages
from shared.backlog import BacklogBlob, expire, export_prefix, list_backlog
from shared.counters import Counters
from shared.exports import Exports, ExportUnreadable
from shared.fanout import Fanout
from shared.health.due import Due, DueIndex, DueRow
from shared.health.reads import ProjectReads, Reads
from shared.health.records import HISTORY_LENGTH, HealthRecord, HealthRecords, RecordChanged, totals_of
from shared.health.rules import (
    CONFIGURATION_UNREADABLE,
    Access,
    Decision,
    HealthPolicy,
    Tick,
    credential_expired,
    credential_warning,
    explanation,
    hints,
    judge,
    tick_between,
    warn_before,
)
from shared.ledger import ExportKey
from shared.model import Destination, Export, ExportStatus, SasToken
from shared.notify import Notifier
from shared.outcomes import Cause, WriteFailure

log = logging.getLogger("signals_export.health")

TEND_SECONDS = 300.0
"""How often the backlog of an active export is queued for replay again while it lasts (a replay that
is still under way when the next one is queued costs nothing: replay is idempotent)."""
ROUND_TIMEOUT = 600.0
"""How long a check's work items may stay open before the next check starts anyway (functionTimeout)."""
SWEEP_PAGE = 1000  # rows of the exports table per sweep page (one Table request)
SWEEP_PAGE_SECONDS = 300.0  # a page every 5 minutes, outside a rotation of the service key
SWEEP_VERSION = 1  # a check of a version with a higher number makes every export due once
ITEM_EXPORTS = 500  # exports per work item when a check shares its work
RECENT_ROUNDS = 64  # the checks remembered in the state row (sequence, start): see ticks_at
_ATTEMPTS = 3
_PROBE_CAUSES = {Cause.THROTTLED.value, Cause.TRANSIENT.value}

Probe = Callable[[Destination], WriteFailure | None]


class Replays(Protocol):
    """The replay queue as the health check uses it (shared.replay.ReplayQueue)."""

    def enqueue(self, export: Export) -> int:
        """Queue the export's backlog for replay after a resume (clearing its poison messages)."""

    def tend(self, export: Export) -> int:
        """Queue the backlog of an active export for replay."""


class Queue(Protocol):
    def send_message(self, content: str) -> Any: ...


@dataclass(frozen=True)
class HealthItem:
    """A share of a check's work: the exports due in [low, high) of `<project>|<export>`, judged as
    part of check `seq`, which started at `started`."""

    seq: int
    started: float
    low: str
    high: str

    def to_message(self) -> str:
        document = {"seq": self.seq, "started": self.started, "low": self.low, "high": self.high}
        return messages.encode(document)

    @classmethod
    def from_message(cls, text: str) -> HealthItem:
        raw = orjson.loads(text)
        return cls(int(raw["seq"]), float(raw["started"]), str(raw["low"]), str(raw["high"]))


@dataclass(frozen=True)
class Round:
    """One check: its sequence number, when it started, and the checks before it (sequence, start)."""

    seq: int
    started: float
    recent: tuple[tuple[int, float], ...] = ()

    @property
    def period(self) -> float | None:
        """The time since the check before started: the schedule's period as it runs."""
        earlier = [started for seq, started in self.recent if seq == self.seq - 1]
        return self.started - earlier[0] if earlier and self.started > earlier[0] else None


@dataclass
class CheckReport:
    """What one health check (or one work item of it) did."""

    checked: int = 0  # exports judged
    changes: list[tuple[ExportKey, str, str, str]] = field(default_factory=list)  # from, to, cause
    expired_files: int = 0
    lost: int = 0
    resealed: int = 0
    unreadable: int = 0  # export rows that could not be read (each reported on its own health)
    tended: int = 0  # active exports whose backlog was queued for replay
    records: list[HealthRecord] = field(default_factory=list)  # each judged export's record after it
    seq: int = 0
    started: float = 0.0
    seconds: float = 0.0  # from the check's start to the end of this part
    period: float | None = None  # the time between this check's start and the previous one's
    items: int = 0  # work items shared out
    skipped: bool = False  # another check was running: nothing judged
    poisoned: int | None = None  # replay items in the poison queue


@dataclass
class _Carry:
    """What one judgment did that must not be done twice when it is tried again with a fresh record."""

    lost: int = 0
    lost_at: float = 0.0
    expired: int = 0


class HealthCheck:
    """Runs health checks (and their shared-out parts) over what is due."""

    def __init__(
        self,
        *,
        store: Exports,
        ledger_table: TableClient,
        records: HealthRecords,
        backlog: ContainerClient,
        probe: Probe,
        notifier: Notifier,
        policy: HealthPolicy,
        replays: Replays,
        due: DueIndex,
        items: Queue | None = None,
        inline_seconds: float = 20.0,
        poisoned: Callable[[], int] | None = None,
        threads: int = 8,
        clock: Callable[[], float] = time.time,
        access: Callable[[Destination], Access | None] = lambda destination: None,
    ) -> None:
        self._store = store
        self._records = records
        self._backlog = backlog
        self._probe = probe
        self._notifier = notifier
        self._policy = policy
        self._replays = replays
        self._due = due
        self._items = items
        self._inline_seconds = inline_seconds
        self._poisoned = poisoned
        self._reads = Reads(store=store, records=records, ledger_table=ledger_table)
        self._workers = Fanout(threads, "health-check")
        self._clock = clock
        self._access = access  # how a destination authenticates, for its hints (shared.onboarding)
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, float], tuple[int, int]] = {}  # backlog blob -> (bytes, lines) counted

    # -- a check

    def run(self) -> CheckReport:
        """One check (the timer)."""
        started = self._clock()
        report = CheckReport(started=started)
        begun = self._begin(started, report)
        if begun is None:
            return report
        round_, state, etag = begun
        report.seq, report.period = round_.seq, round_.period
        etag = self._sweep(state, etag, report, deadline=started + self._inline_seconds / 2)
        left = self._judge_all(self._due.pending(), round_, report, deadline=started + self._inline_seconds)
        if left:
            self._share(left, round_, report)
        if self._poisoned is not None:
            report.poisoned = self._poisoned()
        report.seconds = self._clock() - started
        return report

    def run_item(self, item: HealthItem) -> CheckReport:
        """A share of a check's work (the queue function): the range's due exports, then done."""
        report = CheckReport(seq=item.seq, started=item.started)
        state, _ = self._due.state("check")
        round_ = Round(item.seq, item.started, _recent(state))
        report.period = round_.period
        due = self._due.pending(low=item.low, high=item.high)
        self._judge_all(due, round_, report, deadline=None)
        self._count_items(item.seq, -1)
        report.seconds = self._clock() - item.started
        return report

    def ticks_now(self, record: HealthRecord) -> list[Tick]:
        """An export's ticks as of the last check (the health view's success rate): the checks it sat
        out took empty ticks."""
        state, _ = self._due.state("check")
        return record.ticks_at(int(state.get("seq", 0)) + 1, _recent(state), self._policy.window_ticks)

    def _begin(self, now: float, report: CheckReport) -> tuple[Round, dict[str, Any], str] | None:
        """The next check, with the state row as saved; None while another check runs (its time so far
        is reported)."""
        state, etag = self._due.state("check")
        previous = float(state.get("started", 0.0))
        if int(state.get("items_open", 0)) > 0 and 0 <= now - previous < ROUND_TIMEOUT:
            running = Round(int(state.get("seq", 0)), previous, _recent(state))
            report.skipped, report.seq, report.started = True, running.seq, previous
            report.seconds, report.period = now - previous, running.period
            log.warning("health check still running: this one is skipped", extra={"seq": report.seq})
            return None
        seq = int(state.get("seq", 0)) + 1
        recent = (*_recent(state), (seq, now))[-RECENT_ROUNDS:]
        state.update({"seq": seq, "started": now, "items_open": 0, "recent": orjson.dumps(recent).decode()})
        saved = self._due.save_state("check", state, etag)
        if saved is None:
            report.skipped = True
            log.warning("another health check started at the same time: this one is skipped")
            return None
        return Round(seq, now, tuple(recent)), state, saved

    def _share(self, left: Sequence[Due], round_: Round, report: CheckReport) -> None:
        """Hand what the timer could not judge in its time to the queue, by range of exports."""
        if self._items is None:
            self._judge_all(left, round_, report, deadline=None)
            return
        bounds = [left[i].key for i in range(0, len(left), ITEM_EXPORTS)]
        items = [
            HealthItem(
                round_.seq,
                round_.started,
                _range_key(low),
                _range_key(bounds[i + 1]) if i + 1 < len(bounds) else "~",
            )
            for i, low in enumerate(bounds)
        ]
        self._count_items(round_.seq, len(items))
        for item in items:
            self._items.send_message(item.to_message())
        report.items = len(items)
        log.info(
            "health check shared out", extra={"seq": round_.seq, "items": len(items), "exports": len(left)}
        )

    def _count_items(self, seq: int, change: int) -> None:
        """Work items of check `seq` opened (+) or done (-): the next check waits for them."""
        for _ in range(10):
            state, etag = self._due.state("check")
            if int(state.get("seq", 0)) != seq:
                return
            state["items_open"] = max(0, int(state.get("items_open", 0)) + change)
            if self._due.save_state("check", state, etag) is not None:
                return

    # -- the sweep of the exports table

    def _sweep(self, state: dict[str, Any], etag: str, report: CheckReport, *, deadline: float) -> str:
        """Reseal and note unreadable rows, a page at a time; all pages at once (within the check's
        time) after the service keys changed, and on a new version's first check (every export due).
        Its place is kept in the state row; returns the row's etag."""
        now = self._clock()
        fingerprint = self._store.fingerprint
        lap = str(state.get("sweep_lap", ""))
        token = orjson.loads(state["sweep_token"]) if state.get("sweep_token") else None
        if int(state.get("sweep_version", 0)) < SWEEP_VERSION:
            lap, token = "bootstrap", None
        elif state.get("sweep_keys") != fingerprint:
            lap, token = "rotation", None
        elif not 0 <= now - float(state.get("sweep_at", 0.0)) < SWEEP_PAGE_SECONDS:
            lap = lap or "routine"
        else:
            return etag
        while True:
            entities, token = self._store.page(token, SWEEP_PAGE)
            self._sweep_page(entities, report, bootstrap=lap == "bootstrap")
            if token is None:
                lap = ""
                break
            if lap == "routine" or self._clock() >= deadline:
                break
        state.update(
            {
                "sweep_version": SWEEP_VERSION,
                "sweep_keys": fingerprint,
                "sweep_lap": lap,
                "sweep_token": orjson.dumps(token).decode() if token else "",
                "sweep_at": now,
            }
        )
        saved = self._due.save_state("check", state, etag)
        return etag if saved is None else saved  # another check began meanwhile: its view stands

    def _sweep_page(self, entities: Sequence[Any], report: CheckReport, *, bootstrap: bool) -> None:
        readable: list[ExportKey] = []
        for entity in entities:
            report.resealed += self._store.reseal_entity(entity)
            try:
                readable.append(self._store.read_entity(entity).key)
            except ExportUnreadable as error:
                report.unreadable += 1
                self._unreadable(error)
        if bootstrap and readable:
            self._due.schedule_many(readable, self._clock())

    # -- judging

    def _judge_all(
        self, due: Sequence[Due], round_: Round, report: CheckReport, *, deadline: float | None
    ) -> list[Due]:
        """Judge in key order, each project's exports in one call, projects in parallel; past the
        deadline nothing more is started. Deletes the rows judged; returns what was not judged."""
        projects: list[list[Due]] = []
        for entry in due:
            if projects and projects[-1][0].key[0] == entry.key[0]:
                projects[-1].append(entry)
            else:
                projects.append([entry])

        def judge(dues: list[Due]) -> tuple[list[DueRow], CheckReport] | None:
            if deadline is not None and self._clock() >= deadline:
                return None
            part = CheckReport()
            try:
                return self._judge_project(dues, round_, part), part
            except Exception:  # one project's trouble (its records' save) must not stop the others'
                for entry in dues:
                    self._reads.forget(entry.key)
                log.exception("health check failed for a project", extra={"project_id": dues[0].key[0]})
                return [], part  # left due: judged at the next check

        outcomes = self._workers.run([partial(judge, dues) for dues in projects])
        left: list[Due] = []
        rows: list[DueRow] = []
        for dues, outcome in zip(projects, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is None:
                left.extend(dues)
                continue
            rows.extend(outcome[0])
            _merge(report, outcome[1])
        self._due.done(rows)
        self._reads.keep_from(round_.seq)
        return left

    def _judge_project(self, dues: list[Due], round_: Round, report: CheckReport) -> list[DueRow]:
        """Judge one project's due exports: read together, saved together (one transaction when none
        changed meanwhile; each one judged again from fresh reads when it did). The rows judged."""
        done: list[DueRow] = []
        verdicts: list[_Verdict] = []
        reads: ProjectReads | None = None
        try:
            reads = self._reads.project(dues, round_.seq)
        except Exception:  # read each one on its own below
            log.exception(
                "health check could not read a project at once", extra={"project_id": dues[0].key[0]}
            )
        for due in dues:
            verdict = self._attempt(due, round_, report, reads, _Carry())
            if isinstance(verdict, _Verdict):
                verdicts.append(verdict)
            elif verdict:
                done.extend(due.rows)
        saving = [v for v in verdicts if v.changed]
        etags = iter(self._records.save_all([(v.record, v.etag) for v in saving]) if saving else [])
        for verdict in verdicts:
            etag = next(etags) if verdict.changed else verdict.etag
            if etag is None:  # changed since read: judged again, alone, from what is stored now
                self._reads.forget(verdict.due.key)
                if self._judge_alone(verdict.due, round_, report, verdict.carry):
                    done.extend(verdict.due.rows)
                continue
            try:
                self._conclude(verdict, etag, round_, report)
            except Exception:  # one export's trouble must not stop the others' checks
                self._reads.forget(verdict.due.key)  # what this process read of it may be half changed
                log.exception("health check failed for an export", extra=_ids(verdict.due.key))
                continue
            done.extend(verdict.due.rows)
        report.checked += len(dues)
        return done

    def _judge_alone(self, due: Due, round_: Round, report: CheckReport, carry: _Carry) -> bool:
        """Judge one export from fresh reads, saving as it goes; whether its rows may go."""
        for _ in range(_ATTEMPTS):
            verdict = self._attempt(due, round_, report, None, carry)
            if not isinstance(verdict, _Verdict):
                return verdict
            try:
                etag = (
                    self._records.save_if(verdict.record, verdict.etag) if verdict.changed else verdict.etag
                )
                if etag is None:
                    return False
                self._conclude(verdict, etag, round_, report)
                return True
            except RecordChanged:
                self._reads.forget(due.key)
            except Exception:  # one export's trouble must not stop the others' checks
                self._reads.forget(due.key)  # what this process read of it may be half changed
                log.exception("health check failed for an export", extra=_ids(due.key))
                return False
        log.warning("health record kept changing: judged at the next check", extra=_ids(due.key))
        return False

    def _attempt(
        self, due: Due, round_: Round, report: CheckReport, reads: ProjectReads | None, carry: _Carry
    ) -> _Verdict | bool:
        """Judge one export up to its save: the verdict to save, or whether its rows may go (True:
        nothing to judge; False: left due, for the next check)."""
        try:
            for _ in range(_ATTEMPTS):
                found = reads.exports[due.key] if reads is not None else self._reads.export(due.key)
                if isinstance(found, ExportUnreadable):
                    report.unreadable += 1
                    self._unreadable(found)
                    return True
                if found is None:  # deleted: nothing to judge, nothing to keep watching
                    if due.watch_row is not None:
                        self._due.unwatch(due.watch_row)
                    self._reads.forget(due.key)
                    return True
                record, etag = reads.records[due.key] if reads is not None else self._records.read(*due.key)
                if record is not None and record.pending:
                    try:
                        self._finish(found, record, etag, report)
                    except RecordChanged:
                        pass
                    reads = None  # its state changed: judge it as it is now
                    continue
                if record is not None and record.tick_seq >= round_.seq:
                    return False  # judged in this check already, by another instance
                counters = reads.counters if reads is not None else None
                return self._evaluate(found, record, etag, due, round_, counters, carry)
        except Exception:  # one export's trouble must not stop the others' checks
            self._reads.forget(due.key)  # what this process read of it may be half changed
            log.exception("health check failed for an export", extra=_ids(due.key))
            return False
        return False

    def _evaluate(
        self,
        export: Export,
        found: HealthRecord | None,
        etag: str | None,
        due: Due,
        round_: Round,
        counters: dict[tuple[ExportKey, str], Counters | None] | None,
        carry: _Carry,
    ) -> _Verdict:
        """Take the tick, judge, probe, measure the backlog; everything before the record is saved."""
        now = self._clock()
        record = found or HealthRecord(*export.key, since=now)
        before = record.to_entity() if found is not None else None
        tick = self._tick(export, record, due, round_, counters)
        postponed_for = (
            timedelta(seconds=now - record.since) if export.status is ExportStatus.POSTPONED else None
        )
        decision = judge(export.status, record.ticks, postponed_for=postponed_for, policy=self._policy)
        expires = export.destination.credential
        expires_at = expires.expires_at if isinstance(expires, SasToken) and export.enabled else None
        if decision is None:
            decision = credential_expired(
                export.status, expires_at, now, access=self._access(export.destination)
            )
        if decision is None and self._should_probe(export, record, now):
            record.probed_at = now
            if self._probe(export.destination) is None:
                decision = Decision(
                    ExportStatus.ACTIVE,
                    "",
                    "The storage account accepts writes again: resumed by the service.",
                )
        if record.cause == CONFIGURATION_UNREADABLE:
            record.cause = record.reason = ""  # the row can be read again
        ahead = self._policy.credential_warning
        if warn_before(expires_at, now, ahead=ahead, warned=record.warned_expiry) and expires_at is not None:
            self._warn_expiry(export, record, expires_at, now)
        healthy = export.status is ExportStatus.ACTIVE and not tick.failures and not tick.writes_failed
        tend = self._measure_backlog(export, record, now, carry, healthy=healthy)
        record.lost += carry.lost
        if carry.lost:
            record.lost_at = max(record.lost_at, carry.lost_at)
        if decision is not None:
            self._intend(export, record, decision, now)
        status = export.status if decision is None else decision.status
        watched = self._schedule(export, record, status, due, expires_at)
        changed = before is None or record.to_entity() != before
        return _Verdict(due, export, record, etag, changed, tend, watched, carry)

    def _conclude(self, verdict: _Verdict, etag: str, round_: Round, report: CheckReport) -> None:
        """After the record is saved: carry out a state change, have a backlog replayed, stop
        watching what needs no watching."""
        export, record, carry = verdict.export, verdict.record, verdict.carry
        report.lost += carry.lost
        report.expired_files += carry.expired
        carry.lost = carry.expired = 0
        self._reads.remember(export, record, etag, round_.seq)
        if record.pending:
            self._finish(export, record, etag, report)
        if verdict.tend:
            self._replays.tend(export)
            report.tended += 1
        row = verdict.due.watch_row
        if not verdict.watched and row is not None:
            self._due.unwatch(row)
        report.records.append(record)

    def _warn_expiry(self, export: Export, record: HealthRecord, expires_at: float, now: float) -> None:
        """Tell the customer once, ahead of time, that the export's SAS expires: to its webhook
        (`export.credential-expiring`) and in the log; the health view says so until it is replaced."""
        access = self._access(export.destination)
        record.warned_expiry = expires_at
        expires = datetime.fromtimestamp(expires_at, UTC).isoformat()
        log.warning("export credential expires soon", extra={**_ids(export.key), "expires_at": expires})
        self._notifier.send(
            export,
            {
                "type": "export.credential-expiring",
                "projectId": export.project_id,
                "exportId": export.export_id,
                "at": datetime.fromtimestamp(now, UTC).isoformat(),
                "expiresAt": expires,
                "reason": credential_warning(access)
                if access is not None
                else "The export's SAS expires soon.",
            },
        )

    def _tick(
        self,
        export: Export,
        record: HealthRecord,
        due: Due,
        round_: Round,
        counters: dict[tuple[ExportKey, str], Counters | None] | None,
    ) -> Tick:
        """The counters of the ledger partitions the export path marked (of every partition for a
        record of an earlier version), and this check's tick from them."""
        if record.parts is None:
            parts = self._reads.every_partition(export.key)
        else:
            parts = dict(record.parts)
            read = (
                counters if counters is not None else self._reads.counters(export.key, due.ledger_partitions)
            )
            for partition in due.ledger_partitions:
                found = read.get((export.key, partition))
                if found is not None:
                    parts[partition] = found
        totals = totals_of(parts.values())
        tick = tick_between(record.totals, totals)
        window = self._policy.window_ticks
        ticks = record.ticks_at(round_.seq, round_.recent, window)
        if export.enabled:
            ticks = [*ticks, tick][-window:]
        record.ticks, record.tick_seq, record.ticked_at = ticks, round_.seq, round_.started
        record.ticking, record.parts, record.totals = export.enabled, parts, totals
        record.last_error = totals.last_error or record.last_error
        record.count_exported(round_.started, tick.exported)
        return tick

    def _schedule(
        self,
        export: Export,
        record: HealthRecord,
        status: ExportStatus,
        due: Due,
        expires_at: float | None,
    ) -> bool:
        """Keep the export due when it must be: watched while it has a backlog, a postponed cause to
        probe or a change to finish; due at the end of its retention while postponed, and when its SAS
        must be warned of and when it expires (an idle export is judged only when due). Written before
        the record that relies on it. Returns whether it is watched."""
        probing = status is ExportStatus.POSTPONED and export.enabled and record.cause in _PROBE_CAUSES
        watched = bool(record.backlog_files or record.pending or probing)
        if watched and due.watch_row is None:
            self._due.watch(export.key)
        if status is ExportStatus.POSTPONED:
            deadline = record.since + self._policy.retention.total_seconds()
            if record.due_at != deadline:
                self._due.schedule(export.key, deadline)
                record.due_at = deadline
        if record.backlog_expires_at and record.expiry_due_at != record.backlog_expires_at:
            self._due.schedule(export.key, record.backlog_expires_at)  # a backlog file's expiry
            record.expiry_due_at = record.backlog_expires_at
        credential = self._credential_deadline(record, status, expires_at)
        if credential is not None and record.credential_due_at != credential:
            self._due.schedule(export.key, credential)
            record.credential_due_at = credential
        return watched

    def _credential_deadline(
        self, record: HealthRecord, status: ExportStatus, expires_at: float | None
    ) -> float | None:
        """When the export's SAS next needs the check: its warning (once per expiry), then its expiry
        while the export is active."""
        if expires_at is None:
            return None
        if record.warned_expiry != expires_at:
            return expires_at - self._policy.credential_warning.total_seconds()
        return expires_at if status is ExportStatus.ACTIVE else None

    # -- state changes: saved as pending, carried out, then noted

    def _intend(self, export: Export, record: HealthRecord, decision: Decision, now: float) -> None:
        change: dict[str, Any] = {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "from": export.status.value,
            "to": decision.status.value,
            "cause": decision.cause,
            "reason": decision.reason,
        }
        record.since, record.cause, record.reason = now, decision.cause, decision.reason
        record.ticks = []  # a new state starts a new window
        record.pending = change

    def _finish(self, export: Export, record: HealthRecord, etag: str | None, report: CheckReport) -> None:
        """Carry out a saved state change (again, after a check died midway: each step is idempotent,
        and a webhook receiver tells a repeated notification by its `at`), then note it."""
        change = dict(record.pending or {})
        status = ExportStatus(change["to"])
        self._store.set_status(export.project_id, export.export_id, status, cause=change["cause"])
        log.warning(
            "export state changed",
            extra={"project_id": export.project_id, "export_id": export.export_id, **change},
        )
        delivery = self._notifier.send(
            export,
            {
                "type": "export.state-changed",
                "projectId": export.project_id,
                "exportId": export.export_id,
                **change,
                "explanation": explanation(change["cause"], self._access(export.destination)),
                "hints": hints(change["cause"], self._access(export.destination)),
            },
        )
        if delivery is not None:
            change["notified"] = str(delivery)  # "queued": the queue function notify_webhook posts it
        if status is ExportStatus.ACTIVE:
            self._replays.enqueue(replace(export, status=status))
        record.history = [*record.history, change][-HISTORY_LENGTH:]
        record.pending = None
        self._reads.forget(export.key)  # its status changed
        self._records.save_if(record, etag)
        report.changes.append((export.key, change["from"], change["to"], change["cause"]))

    # -- unreadable rows

    def _unreadable(self, error: ExportUnreadable) -> None:
        """Keep an unreadable row's cause on its health record, with the time it was first seen, and
        watch it: it is judged at every check until it can be read."""
        key = (error.project_id, error.export_id)
        self._reads.forget(key)
        record, etag = self._records.read(*key)
        if record is not None and record.cause == CONFIGURATION_UNREADABLE:
            return
        self._due.watch(key)
        record = record or HealthRecord(*key)
        now = self._clock()
        change = {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "from": "",
            "to": "unreadable",
            "cause": CONFIGURATION_UNREADABLE,
            "reason": explanation(CONFIGURATION_UNREADABLE),
        }
        record.since, record.cause, record.reason = now, CONFIGURATION_UNREADABLE, change["reason"]
        record.history = [*record.history, change][-HISTORY_LENGTH:]
        try:
            self._records.save_if(record, etag)
        except RecordChanged:
            pass  # noted by another check, or changed meanwhile: noted at the next

    # -- probes and backlogs

    def _should_probe(self, export: Export, record: HealthRecord, now: float) -> bool:
        """Only a postponed export whose cause may pass by itself is probed; the others wait for the
        customer to fix the destination and resume."""
        return (
            export.enabled
            and export.status is ExportStatus.POSTPONED
            and record.cause in _PROBE_CAUSES
            and now - record.probed_at >= self._policy.probe_every.total_seconds()
        )

    def _measure_backlog(
        self, export: Export, record: HealthRecord, now: float, carry: _Carry, *, healthy: bool
    ) -> bool:
        """Measure the backlog and remove files kept past the retention period (counting the loss, in
        `carry` until the record holding it is saved). Returns whether an active export whose writes
        succeed should have its backlog replayed now, whatever put signals there (a write that ran past
        its deadline, an error of ours, an instance whose cache still said postponed): nothing waits for
        retention unless the export is postponed or disabled."""
        if (
            export.status is ExportStatus.ACTIVE
            and record.backlog_files == 0
            and not record.totals.backlogged
        ):
            return False
        retention = self._policy.retention.total_seconds()
        horizon = now - retention
        expires = 0.0
        files = bytes_ = signals = 0
        oldest = 0.0
        seen: set[tuple[str, float]] = set()
        for blob in list_backlog(self._backlog, export.project_id, export.export_id):
            if blob.modified < horizon:
                lost = expire(self._backlog, blob)
                if lost is not None:
                    carry.lost += lost
                    carry.lost_at = now
                    carry.expired += 1
                    log.error(
                        "backlog expired: signals lost",
                        extra={
                            "project_id": export.project_id,
                            "export_id": export.export_id,
                            "signals": lost,
                        },
                    )
                    continue
            files += 1
            expires = blob.modified + retention if not expires else min(expires, blob.modified + retention)
            bytes_ += blob.size
            signals += self._signals_in(blob)
            seen.add((blob.name, blob.created))
            oldest = blob.created if not oldest else min(oldest, blob.created)
        prefix = export_prefix(export.project_id, export.export_id)
        with self._lock:
            for gone in [key for key in self._lines if key[0].startswith(prefix) and key not in seen]:
                del self._lines[gone]
        record.backlog_files, record.backlog_bytes, record.backlog_oldest = files, bytes_, oldest
        record.backlog_signals = signals
        record.backlog_expires_at = expires
        if files and healthy and export.enabled and now - record.tended_at >= TEND_SECONDS:
            record.tended_at = now
            return True
        return False

    def _signals_in(self, blob: BacklogBlob) -> int:
        """The signals (lines) in a backlog file. Append blobs only grow: only the bytes added since
        the last check are read."""
        key = (blob.name, blob.created)
        with self._lock:
            counted, lines = self._lines.get(key, (0, 0))
        if blob.size > counted:
            data = self._backlog.get_blob_client(blob.name).download_blob(
                offset=counted, length=blob.size - counted
            )
            lines += data.readall().count(b"\n")
            counted = blob.size
        with self._lock:
            self._lines[key] = (counted, lines)
        return lines


@dataclass
class _Verdict:
    """One export judged, up to its record's save."""

    due: Due
    export: Export
    record: HealthRecord
    etag: str | None
    changed: bool  # the record must be saved
    tend: bool  # have its backlog replayed, once saved
    watched: bool
    carry: _Carry


def _recent(state: dict[str, Any]) -> tuple[tuple[int, float], ...]:
    raw = orjson.loads(state["recent"]) if state.get("recent") else []
    return tuple((int(seq), float(started)) for seq, started in raw)


def _range_key(key: ExportKey) -> str:
    """The bound of a work item's range: the due index's rows of this export and after."""
    return f"{key[0]}|{key[1]}|"


def _merge(report: CheckReport, part: CheckReport) -> None:
    report.checked += part.checked
    report.changes.extend(part.changes)
    report.expired_files += part.expired_files
    report.lost += part.lost
    report.resealed += part.resealed
    report.unreadable += part.unreadable
    report.tended += part.tended
    report.records.extend(part.records)


def _ids(key: ExportKey) -> dict[str, str]:
    return {"project_id": key[0], "export_id": key[1]}
