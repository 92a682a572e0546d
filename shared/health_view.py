"""The health view a customer reads: state, cause in plain words, hints, counters, backlog, replay."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.exports import ExportUnreadable
from shared.health import CONFIGURATION_UNREADABLE, explanation, hints, success_rate
from shared.ledger import read_partitions_of
from shared.model import ExportStatus
from shared.monitor import HealthRecord, totals_of
from shared.replay import progress

if TYPE_CHECKING:
    from shared.runtime import Runtime


def health_view(
    runtime: Runtime, project_id: str, export_id: str, *, now: float | None = None
) -> dict[str, Any]:
    """The export's health as JSON. Raises shared.exports.ExportNotFound for an unknown export."""
    now = time.time() if now is None else now
    record = runtime.health_records.get(project_id, export_id)
    try:
        export, _ = runtime.exports.get(project_id, export_id)
    except ExportUnreadable as unreadable:
        return _unreadable_view(project_id, export_id, unreadable, record)
    totals = totals_of(read_partitions_of(runtime.ledger_table, project_id, export_id))
    cause = record.cause if export.status is not ExportStatus.ACTIVE else ""
    rate = success_rate(record.ticks)
    backlogged = totals.backlogged
    replay = progress(runtime, export)
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
