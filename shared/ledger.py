"""The ledger: per Event Hub partition and export, what each destination file holds (shared.delivery).

Table Storage, one entity per (partition, export): PartitionKey = `<hub>-<partition>`, RowKey =
`<project>|<export>`. All entities of a partition share a PartitionKey, so one batch's records are
saved in one entity-group transaction: one request per batch, however many exports it touched.

Saves are conditional on the etag read. When two instances process the same partition at once (a
rebalance), the loser reloads, joins the two views file by file (the longer one wins: files only
grow) and saves again, so no record ever goes backwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.data.tables import TableClient, TableTransactionError, TransactionOperation, UpdateMode

from shared.delivery import FileState

_PROPERTY_CHARS = 30_000  # a string property holds 32K UTF-16 characters at most
_TRANSACTION_SIZE = 100  # entity-group transaction limit
_SAVE_ATTEMPTS = 5

ExportKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file's state and when its time bucket ends (to forget files no signal can reach any more)."""

    state: FileState
    bucket_end: float  # POSIX seconds


@dataclass
class LedgerEntry:
    """One export's files for one partition, its running counters, and the etag saves depend on.

    The counters ride in the same entity as the file states, so they are saved in the same request
    and advance exactly when the files' records do: a redelivered batch is not counted twice.
    """

    files: dict[str, FileRecord] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    etag: str | None = None

    def state(self, file_key: str) -> FileState | None:
        record = self.files.get(file_key)
        return record.state if record else None


class PartitionLedger:
    """The ledger of one partition, cached in memory between batches of the instance that owns it."""

    def __init__(self, table: TableClient, partition_key: str) -> None:
        self._table = table
        self.partition_key = partition_key
        self._entries: dict[ExportKey, LedgerEntry] | None = None
        self._lock = threading.Lock()

    def entries(self) -> dict[ExportKey, LedgerEntry]:
        """All exports' entries for the partition: one query on first use, then from memory."""
        with self._lock:
            if self._entries is None:
                self._entries = self._load()
            return self._entries

    def forget(self) -> None:
        """Drop the cache: the next batch reloads (after an error that may have left it stale)."""
        with self._lock:
            self._entries = None

    def record(
        self,
        written: Mapping[ExportKey, Mapping[str, FileRecord]],
        counted: Mapping[ExportKey, Mapping[str, int]],
        *,
        keep_after: datetime,
        errors: Mapping[ExportKey, str] | None = None,
    ) -> None:
        """Save a batch's new file states and add its counts, in one transaction per 100 exports.

        Files whose bucket ended before `keep_after` are forgotten: a partition's enqueued times only
        grow, so no later signal can reach them.
        """
        keys = set(written) | {k for k, c in counted.items() if c}
        if not keys:
            return
        entries = self.entries()
        horizon = keep_after.timestamp()
        changed: dict[ExportKey, LedgerEntry] = {}
        for export_key in keys:
            entry = entries.get(export_key)
            if entry is None:
                entry = entries[export_key] = LedgerEntry()
            kept = {k: r for k, r in entry.files.items() if r.bucket_end >= horizon}
            new = written.get(export_key)
            entry.files = _join(kept, new) if new else kept
            counters = entry.counters
            for name, value in counted.get(export_key, {}).items():
                if name.startswith("at_"):
                    counters[name] = max(counters.get(name, 0), value)
                else:
                    counters[name] = counters.get(name, 0) + value
            if errors and export_key in errors:
                entry.last_error = errors[export_key]
            changed[export_key] = entry
        for attempt in range(_SAVE_ATTEMPTS):
            conflicts = self._save(changed)
            if not conflicts:
                return
            fresh = self._load(conflicts)
            for export_key in conflicts:
                mine, theirs = changed[export_key], fresh.get(export_key, LedgerEntry())
                mine.files = _join(mine.files, theirs.files)
                # Both views started from a common past: the larger count is the closer one.
                for name, value in theirs.counters.items():
                    mine.counters[name] = max(mine.counters.get(name, 0), value)
                mine.etag = theirs.etag
            if attempt == _SAVE_ATTEMPTS - 1:
                break
        self.forget()
        raise LedgerConflict(f"ledger of {self.partition_key} kept changing under this instance")

    def _save(self, changed: Mapping[ExportKey, LedgerEntry]) -> list[ExportKey]:
        """Save in transactions of up to 100; return the keys of transactions that met a conflict."""
        conflicts: list[ExportKey] = []
        items = list(changed.items())
        for start in range(0, len(items), _TRANSACTION_SIZE):
            chunk = items[start : start + _TRANSACTION_SIZE]
            operations: list[Any] = []
            for (project_id, export_id), entry in chunk:
                entity = _to_entity(self.partition_key, project_id, export_id, entry)
                if entry.etag is None:
                    operations.append((TransactionOperation.CREATE, entity))
                else:
                    operations.append(
                        (
                            TransactionOperation.UPDATE,
                            entity,
                            {
                                "mode": UpdateMode.REPLACE,
                                "etag": entry.etag,
                                "match_condition": MatchConditions.IfNotModified,
                            },
                        )
                    )
            try:
                results = self._table.submit_transaction(operations)
            except TableTransactionError:
                conflicts.extend(key for key, _ in chunk)
                continue
            for (_, entry), result in zip(chunk, results, strict=True):
                entry.etag = str(result["etag"])
        return conflicts

    def _load(self, only: Iterable[ExportKey] | None = None) -> dict[ExportKey, LedgerEntry]:
        entities = self._table.query_entities("PartitionKey eq @p", parameters={"p": self.partition_key})
        wanted = set(only) if only is not None else None
        entries: dict[ExportKey, LedgerEntry] = {}
        for entity in entities:
            key = _export_key(entity)
            if wanted is None or key in wanted:
                entries[key] = _from_entity(entity)
        return entries


class LedgerConflict(Exception):
    """The ledger could not be saved after repeated conflicts."""


def _join(a: Mapping[str, FileRecord], b: Mapping[str, FileRecord]) -> dict[str, FileRecord]:
    joined = dict(a)
    for key, record in b.items():
        known = joined.get(key)
        if known is None or (
            record.state.length > known.state.length and record.bucket_end >= known.bucket_end
        ):
            joined[key] = record  # the usual case: a later view of the file
        else:
            joined[key] = FileRecord(known.state.join(record.state), max(known.bucket_end, record.bucket_end))
    return joined


def _to_entity(partition_key: str, project_id: str, export_id: str, entry: LedgerEntry) -> dict[str, Any]:
    text = orjson.dumps(
        {k: [r.state.length, r.state.last_sequence, r.bucket_end] for k, r in entry.files.items()}
    ).decode()
    entity: dict[str, Any] = {"PartitionKey": partition_key, "RowKey": row_key(project_id, export_id)}
    if len(text) <= _PROPERTY_CHARS:
        chunks = [text]  # nearly always: a partition writes a few files per export at a time
    else:
        chunks = [text[i : i + _PROPERTY_CHARS] for i in range(0, len(text), _PROPERTY_CHARS)]
    entity["parts"] = len(chunks)
    for index, chunk in enumerate(chunks):
        entity[f"files{index}"] = chunk
    entity["counters"] = orjson.dumps(entry.counters).decode()
    entity["last_error"] = entry.last_error
    return entity


def _from_entity(entity: Any) -> LedgerEntry:
    text = "".join(entity.get(f"files{i}", "") for i in range(int(entity.get("parts", 1))))
    raw = orjson.loads(text) if text else {}
    files = {k: FileRecord(FileState(int(v[0]), int(v[1])), float(v[2])) for k, v in raw.items()}
    counters = orjson.loads(entity.get("counters") or "{}")
    return LedgerEntry(
        files=files,
        counters=counters,
        last_error=str(entity.get("last_error", "")),
        etag=str(entity.metadata["etag"]),
    )


def read_all(table: TableClient) -> dict[ExportKey, list[LedgerEntry]]:
    """Every partition's entry, by export: what the health check sums over."""
    entries: dict[ExportKey, list[LedgerEntry]] = {}
    for entity in table.list_entities():
        entries.setdefault(_export_key(entity), []).append(_from_entity(entity))
    return entries


def read_partitions_of(table: TableClient, project_id: str, export_id: str) -> list[LedgerEntry]:
    """One export's entries across partitions (a query on the RowKey: a table scan, fine for the
    occasional health view; the health check reads everything at once with `read_all`)."""
    return [_from_entity(entity) for entity in _entities_of(table, project_id, export_id)]


def forget(table: TableClient, project_id: str, export_id: str) -> None:
    """Delete one export's entries in every partition (the export was deleted)."""
    row = row_key(project_id, export_id)
    for entity in _entities_of(table, project_id, export_id):
        table.delete_entity(entity["PartitionKey"], row)


def row_key(project_id: str, export_id: str) -> str:
    return f"{project_id}|{export_id}"


def _export_key(entity: Any) -> ExportKey:
    project_id, _, export_id = str(entity["RowKey"]).partition("|")
    return (project_id, export_id)


def _entities_of(table: TableClient, project_id: str, export_id: str) -> Any:
    return table.query_entities("RowKey eq @r", parameters={"r": row_key(project_id, export_id)})
