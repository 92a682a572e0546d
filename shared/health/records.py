"""What the health check remembers of each export between checks: table `exporthealth`,
PartitionKey = project, RowKey = export. The last counter snapshot (per ledger partition), the recent
ticks and the check they were taken at, when and why the state last changed, the history of changes, a
state change under way, the backlog's size, and where the last replay wrote.

A record is written only when something in it changed, and merged: the fields the replay writes
(`note_replay`) are not the health check's to change. The health check's writes are conditional on the
version it read (`save_if`): two checks at once never both act on one export.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, TransactionOperation, UpdateMode

from shared.counters import Counters
from shared.health.rules import Tick
from shared.ledger import ExportKey, LedgerEntry
from shared.model import Export, ExportStatus

HISTORY_LENGTH = 50
HOUR = 3600.0
_TRANSACTION = 100  # operations in one entity-group transaction


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
    # The counters of each ledger partition as the last check read them (their sum is `totals`): a check
    # reads only the partitions the export path marked. None: a record written before they were kept.
    parts: dict[str, Counters] | None = field(default_factory=dict)
    tick_seq: int = 0  # the check (shared.health.check, state `check`) that took the last tick; 0: none
    ticked_at: float = 0.0  # when the ticks last changed (a check, or a resume that cleared them)
    ticking: bool = True  # whether the export was enabled then: checks since took empty ticks if it was
    pending: dict[str, Any] | None = None  # a state change saved but not yet carried out (see HealthCheck)
    due_at: float = 0.0  # the deadline the check scheduled in the due index (end of retention)
    credential_due_at: float = 0.0  # the SAS deadline (warning, expiry) it scheduled there
    backlog_expires_at: float = 0.0  # when its oldest backlog file's latest signal passes the retention
    expiry_due_at: float = 0.0  # that deadline, as scheduled in the due index
    # Signals exported, by the check that counted them (its start, the count), over the last hour: the
    # pane's "exported in the last hour". An idle export's entries age out when read (`exported_since`).
    hourly: list[tuple[float, int]] = field(default_factory=list)

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
            "parts": orjson.dumps({k: c.to_json() for k, c in (self.parts or {}).items()}).decode(),
            "tick_seq": self.tick_seq,
            "ticked_at": self.ticked_at,
            "ticking": self.ticking,
            "pending": orjson.dumps(self.pending).decode() if self.pending else "",
            "due_at": self.due_at,
            "credential_due_at": self.credential_due_at,
            "backlog_expires_at": self.backlog_expires_at,
            "expiry_due_at": self.expiry_due_at,
            "hourly": orjson.dumps(self.hourly).decode() if self.hourly else "",
        }

    def ticks_at(self, seq: int, recent: Sequence[tuple[int, float]], window: int) -> list[Tick]:
        """The ticks as of check `seq`, before its own: each check since the last tick took an empty
        one while the export was enabled (nothing happened to it, so nothing was written). `recent`:
        the latest checks (sequence number, start), to count those since a resume cleared the ticks."""
        if not self.ticking:
            return list(self.ticks)
        if self.tick_seq:
            missed = seq - self.tick_seq - 1
        else:
            missed = sum(1 for number, started in recent if number < seq and started > self.ticked_at)
        if missed <= 0 or not self.ticked_at:
            return list(self.ticks)
        return [*self.ticks, *[Tick()] * min(window, missed)][-window:]

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
            parts=_parts(entity),
            tick_seq=int(entity.get("tick_seq", 0)),
            ticked_at=float(entity.get("ticked_at", 0.0)),
            ticking=bool(entity.get("ticking", True)),
            pending=orjson.loads(entity["pending"]) if entity.get("pending") else None,
            due_at=float(entity.get("due_at", 0.0)),
            credential_due_at=float(entity.get("credential_due_at", 0.0)),
            backlog_expires_at=float(entity.get("backlog_expires_at", 0.0)),
            expiry_due_at=float(entity.get("expiry_due_at", 0.0)),
            hourly=[(float(at), int(count)) for at, count in orjson.loads(entity.get("hourly") or "[]")],
        )

    def count_exported(self, at: float, exported: int) -> None:
        """Note a check's exported signals, forgetting what is over an hour old."""
        kept = [(when, count) for when, count in self.hourly if when > at - HOUR]
        self.hourly = [*kept, (at, exported)] if exported else kept

    def exported_since(self, since: float) -> int:
        """Signals the checks from `since` on counted as exported."""
        return sum(count for when, count in self.hourly if when >= since)


def _parts(entity: Mapping[str, Any]) -> dict[str, Counters] | None:
    """The per-partition counters; None for a record of an earlier version that has totals only."""
    raw = entity.get("parts")
    if raw is None:
        return None if entity.get("totals") not in (None, "", "{}") else {}
    return {key: Counters.from_json(value) for key, value in orjson.loads(raw).items()}


class RecordChanged(Exception):
    """The record changed since it was read (another check, the replay, a resume): read it again."""

    def __init__(self, project_id: str, export_id: str) -> None:
        super().__init__(f"health record of {project_id}/{export_id} changed since it was read")


class HealthRecords:
    """The `exporthealth` table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get(self, project_id: str, export_id: str) -> HealthRecord:
        try:
            return HealthRecord.from_entity(self._table.get_entity(project_id, export_id))
        except ResourceNotFoundError:
            return HealthRecord(project_id, export_id)

    def read(self, project_id: str, export_id: str) -> tuple[HealthRecord | None, str | None]:
        """The record and its etag; (None, None) when there is none."""
        try:
            entity = self._table.get_entity(project_id, export_id)
        except ResourceNotFoundError:
            return None, None
        return HealthRecord.from_entity(entity), str(entity.metadata["etag"])

    def read_project(self, project_id: str) -> dict[str, tuple[HealthRecord, str]]:
        """The records of a project's exports, by export id, with their etags (one partition query)."""
        entities = self._table.query_entities("PartitionKey eq @p", parameters={"p": project_id})
        return {
            str(entity["RowKey"]): (HealthRecord.from_entity(entity), str(entity.metadata["etag"]))
            for entity in entities
        }

    def save_all(self, saves: Sequence[tuple[HealthRecord, str | None]]) -> list[str | None]:
        """`save_if` for records of one project, in one entity-group transaction per 100 when none of
        them changed meanwhile (one by one otherwise). Each one's new etag, or None when it changed."""
        results: list[str | None] = []
        for start in range(0, len(saves), _TRANSACTION):
            chunk = saves[start : start + _TRANSACTION]
            if len(chunk) > 1:
                operations: list[Any] = [
                    (TransactionOperation.CREATE, record.to_entity())
                    if etag is None
                    else (
                        TransactionOperation.UPDATE,
                        record.to_entity(),
                        {
                            "mode": UpdateMode.MERGE,
                            "etag": etag,
                            "match_condition": MatchConditions.IfNotModified,
                        },
                    )
                    for record, etag in chunk
                ]
                try:
                    done = self._table.submit_transaction(operations)
                except TableTransactionError:
                    pass  # one of them changed: each on its own, below
                else:
                    results.extend(str(result["etag"]) for result in done)
                    continue
            for record, etag in chunk:
                try:
                    results.append(self.save_if(record, etag))
                except RecordChanged:
                    results.append(None)
        return results

    def save_if(self, record: HealthRecord, etag: str | None) -> str:
        """Save (merged) only if the record is as read with `etag` (None: only if there is none);
        returns the new etag. Raises RecordChanged when another writer came first."""
        try:
            if etag is None:
                result = self._table.create_entity(record.to_entity())
            else:
                result = self._table.update_entity(
                    record.to_entity(),
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except ResourceExistsError:
            raise RecordChanged(record.project_id, record.export_id) from None
        except ResourceNotFoundError:
            raise RecordChanged(record.project_id, record.export_id) from None
        except HttpResponseError as error:
            if error.status_code == 412:
                raise RecordChanged(record.project_id, record.export_id) from None
            raise
        return str(result["etag"])

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

    def note_resume(
        self, export: Export, *, by: str, now: float, parts: Mapping[str, Counters] | None = None
    ) -> None:
        """Note a resume that did not come from the health check (the customer's), so the record's
        state, window and history agree with the export's. `parts`: the export's counters by ledger
        partition now, the next tick's baseline: writes that failed before the resume (an instance
        whose cache still said active) are not held against the resumed export."""
        record = self.get(export.project_id, export.export_id)
        if parts is not None:
            record.parts, record.totals = dict(parts), totals_of(parts.values())
        change = {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "from": export.status.value,
            "to": ExportStatus.ACTIVE.value,
            "cause": "",
            "reason": f"Resumed by the {by}.",
        }
        record.since, record.cause, record.reason = now, "", change["reason"]
        record.ticks, record.tick_seq, record.ticked_at, record.ticking = [], 0, now, True
        record.history = [*record.history, change][-HISTORY_LENGTH:]
        self.save(record)


def totals_of(entries: Iterable[LedgerEntry] | Iterable[Counters]) -> Counters:
    """An export's counters summed over partitions (the latest error code is the latest failure's)."""
    totals = Counters()
    for entry in entries:
        totals.add(entry if isinstance(entry, Counters) else entry.counters)
    return totals
