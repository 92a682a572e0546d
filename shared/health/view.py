"""The health view a customer reads: state, cause in plain words, hints, counters, backlog, replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableClient

from shared.exports import Exports, ExportUnreadable
from shared.health.records import HOUR, HealthRecord, HealthRecords, totals_of
from shared.health.rules import (
    CONFIGURATION_UNREADABLE,
    Access,
    Tick,
    credential_warning,
    explanation,
    hints,
    success_rate,
)
from shared.ledger import read_partitions_of
from shared.model import Destination, EntraId, Export, ExportStatus, SasToken
from shared.replay import ReplayQueue


class HealthView:
    """Builds the health view of one export from what the health check and the ledger keep."""

    def __init__(
        self,
        *,
        exports: Exports,
        records: HealthRecords,
        ledger_table: TableClient,
        replays: ReplayQueue,
        ticks: Callable[[HealthRecord], list[Tick]] = lambda record: record.ticks,
        clock: Callable[[], float] = time.time,
        access: Callable[[Destination], Access | None] = lambda destination: None,
        warn_ahead: timedelta = timedelta(days=7),
    ) -> None:
        self._ticks = ticks  # as of the last check (shared.health.check.HealthCheck.ticks_now)
        self._exports = exports
        self._records = records
        self._ledger_table = ledger_table
        self._replays = replays
        self._clock = clock
        self._access = access  # how a destination authenticates, for its hints (shared.onboarding)
        self._warn_ahead = warn_ahead

    def of(self, project_id: str, export_id: str) -> dict[str, Any]:
        """The export's health as JSON. Raises shared.exports.ExportNotFound for an unknown export."""
        now = self._clock()
        record = self._records.get(project_id, export_id)
        try:
            export, _ = self._exports.get(project_id, export_id)
        except ExportUnreadable as unreadable:
            return _unreadable_view(project_id, export_id, unreadable, record)
        totals = totals_of(read_partitions_of(self._ledger_table, project_id, export_id))
        cause = record.cause if export.status is not ExportStatus.ACTIVE else ""
        rate = success_rate(self._ticks(record))
        backlogged = totals.backlogged
        replay = self._replays.progress(export)
        access = self._access(export.destination)
        return {
            "projectId": project_id,
            "exportId": export_id,
            "enabled": export.enabled,
            "status": export.status.value,
            "since": _iso(record.since) if record.since else None,
            "cause": cause or None,
            "explanation": explanation(cause, access) or record.reason or None,
            "hints": hints(cause, access),
            "credential": self._credential(export, access, now),
            "successRate": None if rate is None else round(rate, 4),
            "counters": {
                "exported": totals.exported,
                "exportedBytes": totals.exported_bytes,
                "exportedLastHour": record.exported_since(now - HOUR),  # as the checks counted them
                "backlogged": backlogged,
                "dropped": totals.dropped,
                "lost": record.lost,
                "failedWrites": totals.writes_failed,
            },
            "lastSuccessAt": _iso(totals.last_success) if totals.last_success else None,
            "lastFailureAt": _iso(totals.last_failure) if totals.last_failure else None,
            "lastErrorCode": totals.last_error or record.last_error or None,
            "backlog": {
                "files": replay["itemsLeft"],
                "bytes": replay["bytesLeft"],
                "oldestAgeSeconds": round(now - record.backlog_oldest) if record.backlog_oldest else None,
            },
            "replay": {
                **replay,
                "lastFolder": record.replay_folder or None,
                "lastAt": _iso(record.replayed_at) if record.replayed_at else None,
            },
            "history": record.history[-10:],
        }

    def _credential(self, export: Export, access: Access | None, now: float) -> dict[str, Any]:
        """How the export authenticates; for a SAS, when it expires and, from CREDENTIAL_WARNING_DAYS
        before, the warning (the health check also sends it to the webhook, once)."""
        destination = export.destination
        view: dict[str, Any] = {"method": destination.method.value}
        credential = destination.credential
        if isinstance(credential, EntraId):
            view["tenantId"] = credential.tenant_id
        if isinstance(credential, SasToken):
            view["expiresAt"] = _iso(credential.expires_at)
            view["expired"] = now >= credential.expires_at
            soon = now >= credential.expires_at - self._warn_ahead.total_seconds()
            if soon and not view["expired"] and access is not None:
                view["warning"] = credential_warning(access)
        return view


def _unreadable_view(
    project_id: str, export_id: str, error: ExportUnreadable, record: HealthRecord
) -> dict[str, Any]:
    """An export whose stored configuration cannot be read: nothing is exported or kept for it until
    an operator or the customer acts, and the view says what to do."""
    return {
        "projectId": project_id,
        "exportId": export_id,
        "enabled": None,
        "status": "unreadable",
        "since": _iso(record.since) if record.since else None,
        "cause": CONFIGURATION_UNREADABLE,
        "explanation": explanation(CONFIGURATION_UNREADABLE),
        "hints": hints(CONFIGURATION_UNREADABLE),
        "detail": error.reason,
        "history": record.history[-10:],
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()
