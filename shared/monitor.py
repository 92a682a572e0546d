"""The health check the timer function runs: judge every export, postpone, probe, disable, expire.

I/O at the edges (tables, backlog container, probes, webhooks); the decisions are shared.health's.
Per export it keeps a health record (table `exporthealth`, PartitionKey = project, RowKey = export):
the last counter snapshot, the recent ticks, when and why the state last changed, the history of
changes, and the backlog's size. A record is written only when something in it changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from azure.storage.blob import ContainerClient

from shared.backlog import BacklogBlob, expire, export_prefix, list_backlog
from shared.counters import Counters
from shared.exports import Exports, ExportUnreadable
from shared.health import (
    CONFIGURATION_UNREADABLE,
    Decision,
    HealthPolicy,
    Tick,
    explanation,
    hints,
    judge,
    tick_between,
)
from shared.ledger import ExportKey, LedgerEntry, read_all
from shared.model import Destination, Export, ExportStatus
from shared.notify import Notifier
from shared.outcomes import Cause, WriteFailure

log = logging.getLogger("signals_export.health")

HISTORY_LENGTH = 50
TEND_SECONDS = 300.0
"""How often the backlog of an active export is queued for replay again while it lasts (a replay that
is still under way when the next one is queued costs nothing: replay is idempotent)."""


@dataclass
class HealthRecord:
    """What the health check remembers of an export between ticks."""

    project_id: str
    export_id: str
    totals: Counters = field(default_factory=Counters)
    ticks: list[Tick] = field(default_factory=list)
    since: float = 0.0
    cause: str = ""
    reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    lost: int = 0
    lost_at: float = 0.0
    backlog_files: int = 0
    backlog_bytes: int = 0
    backlog_oldest: float = 0.0
    backlog_signals: int = 0
    probed_at: float = 0.0
    last_error: str = ""
    # Written by the replay, not by the health check (merged into the entity: see HealthRecords).
    replay_folder: str = ""
    replayed_at: float = 0.0
    tended_at: float = 0.0  # when the health check last asked for this export's backlog to be replayed

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": self.project_id,
            "RowKey": self.export_id,
            "totals": orjson.dumps(self.totals.to_json()).decode(),
            "ticks": orjson.dumps([t.to_json() for t in self.ticks]).decode(),
            "since": self.since,
            "cause": self.cause,
            "reason": self.reason,
            "history": orjson.dumps(self.history).decode(),
            "lost": self.lost,
            "lost_at": self.lost_at,
            "backlog_files": self.backlog_files,
            "backlog_bytes": self.backlog_bytes,
            "backlog_oldest": self.backlog_oldest,
            "backlog_signals": self.backlog_signals,
            "probed_at": self.probed_at,
            "tended_at": self.tended_at,
            "last_error": self.last_error,
        }

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> HealthRecord:
        return cls(
            project_id=str(entity["PartitionKey"]),
            export_id=str(entity["RowKey"]),
            totals=Counters.from_json(orjson.loads(entity.get("totals") or "{}")),
            ticks=[Tick.from_json(t) for t in orjson.loads(entity.get("ticks") or "[]")],
            since=float(entity.get("since", 0.0)),
            cause=str(entity.get("cause", "")),
            reason=str(entity.get("reason", "")),
            history=orjson.loads(entity.get("history") or "[]"),
            lost=int(entity.get("lost", 0)),
            lost_at=float(entity.get("lost_at", 0.0)),
            backlog_files=int(entity.get("backlog_files", 0)),
            backlog_bytes=int(entity.get("backlog_bytes", 0)),
            backlog_oldest=float(entity.get("backlog_oldest", 0.0)),
            backlog_signals=int(entity.get("backlog_signals", 0)),
            probed_at=float(entity.get("probed_at", 0.0)),
            tended_at=float(entity.get("tended_at", 0.0)),
            replay_folder=str(entity.get("replay_folder", "")),
            replayed_at=float(entity.get("replayed_at", 0.0)),
            last_error=str(entity.get("last_error", "")),
        )


class HealthRecords:
    """The `exporthealth` table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get(self, project_id: str, export_id: str) -> HealthRecord:
        try:
            return HealthRecord.from_entity(self._table.get_entity(project_id, export_id))
        except ResourceNotFoundError:
            return HealthRecord(project_id, export_id)

    def all(self) -> dict[ExportKey, HealthRecord]:
        records = (HealthRecord.from_entity(e) for e in self._table.list_entities())
        return {(r.project_id, r.export_id): r for r in records}

    def save(self, record: HealthRecord) -> None:
        """Merged: the fields the replay writes (`note_replay`) are not the health check's to change."""
        self._table.upsert_entity(record.to_entity(), mode=UpdateMode.MERGE)

    def note_replay(self, project_id: str, export_id: str, folder: str, at: float) -> None:
        """Where the last replay wrote, for the health view: the customer knows where to look."""
        entity = {"PartitionKey": project_id, "RowKey": export_id, "replay_folder": folder, "replayed_at": at}
        self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    def delete(self, project_id: str, export_id: str) -> None:
        try:
            self._table.delete_entity(project_id, export_id)
        except ResourceNotFoundError:
            pass


def totals_of(entries: list[LedgerEntry]) -> Counters:
    """An export's counters summed over partitions (the latest error code is the latest failure's)."""
    totals = Counters()
    for entry in entries:
        totals.add(entry.counters)
    return totals


Probe = Callable[[Destination], WriteFailure | None]
OnResume = Callable[[Export], object]


@dataclass
class MonitorReport:
    """What one health check did."""

    checked: int = 0
    changes: list[tuple[ExportKey, str, str]] = field(default_factory=list)
    expired_files: int = 0
    lost: int = 0
    resealed: int = 0
    unreadable: int = 0  # export rows that could not be read (each reported on its own health)
    tended: int = 0  # active exports whose backlog was queued for replay
    records: list[HealthRecord] = field(default_factory=list)  # each export's record after the check


class HealthMonitor:
    """Runs one health check over every export."""

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
        on_resume: OnResume = lambda export: None,
        on_backlog: OnResume = lambda export: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._ledger_table = ledger_table
        self._records = records
        self._backlog = backlog
        self._probe = probe
        self._notifier = notifier
        self._policy = policy
        self._on_resume = on_resume
        self._on_backlog = on_backlog
        self._clock = clock
        self._lines: dict[tuple[str, float], tuple[int, int]] = {}  # backlog blob -> (bytes, lines) counted

    def run(self) -> MonitorReport:
        report = MonitorReport()
        report.resealed = self._store.reseal()  # after a rotation of the service key
        ledgers = read_all(self._ledger_table)
        records = self._records.all()
        exports, unreadable = self._store.scan()
        for error in unreadable:
            key = (error.project_id, error.export_id)
            record = records.get(key) or HealthRecord(error.project_id, error.export_id, since=self._clock())
            self._note_unreadable(record, error)
            report.unreadable += 1
        for export in exports:
            record = records.get(export.key) or HealthRecord(*export.key, since=self._clock())
            try:
                self._check(export, record, ledgers.get(export.key, []), report)
                report.records.append(record)
            except Exception:  # one export's trouble must not stop the others' checks
                log.exception(
                    "health check failed for an export",
                    extra={"project_id": export.project_id, "export_id": export.export_id},
                )
            report.checked += 1
        return report

    def _check(
        self, export: Export, record: HealthRecord, entries: list[LedgerEntry], report: MonitorReport
    ) -> None:
        now = self._clock()
        before = record.to_entity()
        totals = totals_of(entries)
        tick = tick_between(record.totals, totals)
        record.totals = totals
        record.last_error = totals.last_error or record.last_error
        if export.enabled:
            record.ticks = [*record.ticks, tick][-self._policy.window_ticks :]
        postponed_for = (
            timedelta(seconds=now - record.since) if export.status is ExportStatus.POSTPONED else None
        )
        decision = judge(export.status, record.ticks, postponed_for=postponed_for, policy=self._policy)
        if decision is None and self._should_probe(export, record, now):
            record.probed_at = now
            failure = self._probe(export.destination)
            if failure is None:
                decision = Decision(
                    ExportStatus.ACTIVE,
                    "",
                    "The storage account accepts writes again: resumed by the service.",
                )
        if decision is not None:
            self._apply(export, record, decision, now)
            report.changes.append((export.key, export.status.value, decision.status.value))
        if record.cause == CONFIGURATION_UNREADABLE:
            record.cause = record.reason = ""  # the row can be read again
        healthy = export.status is ExportStatus.ACTIVE and not tick.failures and not tick.writes_failed
        self._tend_backlog(export, record, now, report, healthy=healthy)
        if record.to_entity() != before:
            self._records.save(record)

    def _note_unreadable(self, record: HealthRecord, error: ExportUnreadable) -> None:
        """Keep an unreadable row's cause on its health record, with the time it was first seen."""
        if record.cause == CONFIGURATION_UNREADABLE:
            return
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
        self._records.save(record)

    def record_resume(self, export: Export, record: HealthRecord, *, by: str) -> None:
        """Note a resume that did not come from the health check (the customer's), so the record's
        state, window and history agree with the export's."""
        now = self._clock()
        change = {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "from": export.status.value,
            "to": ExportStatus.ACTIVE.value,
            "cause": "",
            "reason": f"Resumed by the {by}.",
        }
        record.since, record.cause, record.reason = now, "", change["reason"]
        record.ticks = []
        record.history = [*record.history, change][-HISTORY_LENGTH:]
        self._records.save(record)

    def _should_probe(self, export: Export, record: HealthRecord, now: float) -> bool:
        """Only a postponed export whose cause may pass by itself is probed; the others wait for the
        customer to fix the destination and resume."""
        return (
            export.enabled
            and export.status is ExportStatus.POSTPONED
            and record.cause in {Cause.THROTTLED.value, Cause.TRANSIENT.value}
            and now - record.probed_at >= self._policy.probe_every.total_seconds()
        )

    def _apply(self, export: Export, record: HealthRecord, decision: Decision, now: float) -> None:
        self._store.set_status(export.project_id, export.export_id, decision.status, cause=decision.cause)
        change: dict[str, Any] = {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "from": export.status.value,
            "to": decision.status.value,
            "cause": decision.cause,
            "reason": decision.reason,
        }
        record.since, record.cause, record.reason = now, decision.cause, decision.reason
        record.ticks = []  # a new state starts a new window
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
                "explanation": explanation(decision.cause),
                "hints": hints(decision.cause),
            },
        )
        if delivery is not None:
            change["notified"] = str(delivery)  # "queued": the queue function notify_webhook posts it
        record.history = [*record.history, change][-HISTORY_LENGTH:]
        if decision.status is ExportStatus.ACTIVE:
            self._on_resume(export)

    def _tend_backlog(
        self, export: Export, record: HealthRecord, now: float, report: MonitorReport, *, healthy: bool
    ) -> None:
        """Measure the backlog, remove files kept past the retention period (counting the loss), and
        have the backlog of an active export whose writes succeed replayed, whatever put signals there
        (a write that ran past its deadline, an error of ours, an instance whose cache still said
        postponed): nothing waits for retention unless the export is postponed or disabled."""
        if (
            export.status is ExportStatus.ACTIVE
            and record.backlog_files == 0
            and not record.totals.backlogged
        ):
            return
        horizon = now - self._policy.retention.total_seconds()
        files = bytes_ = signals = 0
        oldest = 0.0
        seen: set[tuple[str, float]] = set()
        for blob in list_backlog(self._backlog, export.project_id, export.export_id):
            if blob.modified < horizon:
                lost = expire(self._backlog, blob)
                if lost is not None:
                    record.lost += lost
                    record.lost_at = now
                    report.lost += lost
                    report.expired_files += 1
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
            bytes_ += blob.size
            signals += self._signals_in(blob)
            seen.add((blob.name, blob.created))
            oldest = blob.created if not oldest else min(oldest, blob.created)
        prefix = export_prefix(export.project_id, export.export_id)
        for gone in [key for key in self._lines if key[0].startswith(prefix) and key not in seen]:
            del self._lines[gone]
        record.backlog_files, record.backlog_bytes, record.backlog_oldest = files, bytes_, oldest
        record.backlog_signals = signals
        if files and healthy and export.enabled and now - record.tended_at >= TEND_SECONDS:
            record.tended_at = now
            self._on_backlog(export)
            report.tended += 1

    def _signals_in(self, blob: BacklogBlob) -> int:
        """The signals (lines) in a backlog file. Append blobs only grow: only the bytes added since
        the last check are read."""
        key = (blob.name, blob.created)
        counted, lines = self._lines.get(key, (0, 0))
        if blob.size > counted:
            data = self._backlog.get_blob_client(blob.name).download_blob(
                offset=counted, length=blob.size - counted
            )
            lines += data.readall().count(b"\n")
            counted = blob.size
        self._lines[key] = (counted, lines)
        return lines
