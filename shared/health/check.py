"""The health check the timer function runs: judge every export, postpone, probe, disable, expire
backlogs, and have the backlogs of healthy exports replayed.

I/O at the edges (tables, backlog container, probes, webhooks, the replay queue); the decisions are
shared.health.rules'. What it remembers of each export is shared.health.records'.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from shared.backlog import BacklogBlob, expire, export_prefix, list_backlog
from shared.exports import Exports, ExportUnreadable
from shared.health.records import HISTORY_LENGTH, HealthRecord, HealthRecords, totals_of
from shared.health.rules import (
    CONFIGURATION_UNREADABLE,
    Access,
    Decision,
    HealthPolicy,
    credential_expired,
    credential_warning,
    explanation,
    hints,
    judge,
    tick_between,
    warn_before,
)
from shared.ledger import ExportKey, LedgerEntry, read_all
from shared.model import Destination, Export, ExportStatus, SasToken
from shared.notify import Notifier
from shared.outcomes import Cause, WriteFailure

log = logging.getLogger("signals_export.health")

TEND_SECONDS = 300.0
"""How often the backlog of an active export is queued for replay again while it lasts (a replay that
is still under way when the next one is queued costs nothing: replay is idempotent)."""


Probe = Callable[[Destination], WriteFailure | None]


class Replays(Protocol):
    """The replay queue as the health check uses it (shared.replay.ReplayQueue)."""

    def enqueue(self, export: Export) -> int:
        """Queue the export's backlog for replay after a resume (clearing its poison messages)."""

    def tend(self, export: Export) -> int:
        """Queue the backlog of an active export for replay."""


@dataclass
class CheckReport:
    """What one health check did."""

    checked: int = 0
    changes: list[tuple[ExportKey, str, str]] = field(default_factory=list)
    expired_files: int = 0
    lost: int = 0
    resealed: int = 0
    unreadable: int = 0  # export rows that could not be read (each reported on its own health)
    tended: int = 0  # active exports whose backlog was queued for replay
    records: list[HealthRecord] = field(default_factory=list)  # each export's record after the check


class HealthCheck:
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
        replays: Replays,
        clock: Callable[[], float] = time.time,
        access: Callable[[Destination], Access | None] = lambda destination: None,
    ) -> None:
        self._store = store
        self._ledger_table = ledger_table
        self._records = records
        self._backlog = backlog
        self._probe = probe
        self._notifier = notifier
        self._policy = policy
        self._replays = replays
        self._clock = clock
        self._access = access  # how a destination authenticates, for its hints (shared.onboarding)
        self._lines: dict[tuple[str, float], tuple[int, int]] = {}  # backlog blob -> (bytes, lines) counted

    def run(self) -> CheckReport:
        report = CheckReport()
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
        self, export: Export, record: HealthRecord, entries: list[LedgerEntry], report: CheckReport
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
        expires = export.destination.credential
        expires_at = expires.expires_at if isinstance(expires, SasToken) and export.enabled else None
        if decision is None:
            decision = credential_expired(
                export.status, expires_at, now, access=self._access(export.destination)
            )
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
        ahead = self._policy.credential_warning
        if warn_before(expires_at, now, ahead=ahead, warned=record.warned_expiry) and expires_at is not None:
            self._warn_expiry(export, record, expires_at, now)
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

    def _warn_expiry(self, export: Export, record: HealthRecord, expires_at: float, now: float) -> None:
        """Tell the customer once, ahead of time, that the export's SAS expires: to its webhook
        (`export.credential-expiring`) and in the log; the health view says so until it is replaced."""
        access = self._access(export.destination)
        record.warned_expiry = expires_at
        expires = datetime.fromtimestamp(expires_at, UTC).isoformat()
        log.warning("export credential expires soon", extra={**_ids(export), "expires_at": expires})
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
                "explanation": explanation(decision.cause, self._access(export.destination)),
                "hints": hints(decision.cause, self._access(export.destination)),
            },
        )
        if delivery is not None:
            change["notified"] = str(delivery)  # "queued": the queue function notify_webhook posts it
        record.history = [*record.history, change][-HISTORY_LENGTH:]
        if decision.status is ExportStatus.ACTIVE:
            self._replays.enqueue(export)

    def _tend_backlog(
        self, export: Export, record: HealthRecord, now: float, report: CheckReport, *, healthy: bool
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
            self._replays.tend(export)
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


def _ids(export: Export) -> dict[str, str]:
    return {"project_id": export.project_id, "export_id": export.export_id}
