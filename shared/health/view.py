"""The health view a customer reads: state, cause in plain words, hints, counters, backlog, replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient

from shared.exports import Exports, ExportUnreadable
from shared.health.records import HealthRecord, HealthRecords, totals_of
from shared.health.rules import CONFIGURATION_UNREADABLE, Tick, explanation, hints, success_rate
from shared.ledger import read_partitions_of
from shared.model import ExportStatus
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
    ) -> None:
        self._ticks = ticks  # as of the last check (shared.health.check.HealthCheck.ticks_now)
        self._exports = exports
        self._records = records
        self._ledger_table = ledger_table
        self._replays = replays
        self._clock = clock

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
        return {
            "projectId": project_id,
            "exportId": export_id,
            "enabled": export.enabled,
            "status": export.status.value,
            "since": _iso(record.since) if record.since else None,
            "cause": cause or None,
            "explanation": explanation(cause) or record.reason or None,
            "hints": hints(cause),
            "successRate": None if rate is None else round(rate, 4),
            "counters": {
                "exported": totals.exported,
                "exportedBytes": totals.exported_bytes,
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
