"""What the health check remembers of each export between checks: table `exporthealth`,
PartitionKey = project, RowKey = export. The last counter snapshot, the recent ticks, when and why the
state last changed, the history of changes, the backlog's size, and where the last replay wrote.

A record is written only when something in it changed, and merged: the fields the replay writes
(`note_replay`) are not the health check's to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.counters import Counters
from shared.health.rules import Tick
from shared.ledger import ExportKey, LedgerEntry
from shared.model import Export, ExportStatus

HISTORY_LENGTH = 50


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
    warned_expiry: float = 0.0  # the SAS expiry the customer was last warned of

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
            "warned_expiry": self.warned_expiry,
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
            warned_expiry=float(entity.get("warned_expiry", 0.0)),
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

    def note_resume(self, export: Export, *, by: str, now: float) -> None:
        """Note a resume that did not come from the health check (the customer's), so the record's
        state, window and history agree with the export's."""
        record = self.get(export.project_id, export.export_id)
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
        self.save(record)


def totals_of(entries: list[LedgerEntry]) -> Counters:
    """An export's counters summed over partitions (the latest error code is the latest failure's)."""
    totals = Counters()
    for entry in entries:
        totals.add(entry.counters)
    return totals
