"""The ledger: per Event Hub partition and export, what each destination file holds (shared.delivery).

Table Storage, one entity per (partition, export): PartitionKey = `<hub>-<partition>`, RowKey =
`<project>|<export>`. All entities of a partition share a PartitionKey, so one batch's records are
saved in one entity-group transaction: one request per batch, however many exports it touched.

The ledger is the authority delivery anchors on, so three rules keep it one:

- **Saves are conditional on the etag read.** When two owners of a partition save at once, the loser
  reloads, joins the two views file by file (the longer state wins: files only grow) and saves again:
  no record ever goes backwards.
- **Counts follow the records.** A batch's signals are counted as the records they advance: a line
  counts when the record of its file moves past it, against the entry as saved (re-counted after a
  conflict). A batch delivered twice, or by two owners, is counted once.
- **The cache is a hint.** Each instance keeps the partition's entries between batches, and reloads
  them whenever a batch does not follow the last one it saw (a partition handed to another instance
  and back, a redelivery): another owner may have written meanwhile. Delivery also asks for an entry
  afresh on any surprise (`fresh`).

A file is forgotten once its time bucket ended well before the batch being recorded (`horizon`): no
signal of it can come again, except in a stale redelivery, which finds the bucket forgotten and writes
nothing.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from operator import itemgetter
from typing import Any, Protocol

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, TransactionOperation, UpdateMode

from shared.counters import Counters
from shared.delivery import FORGOTTEN, FileState, Line, Record

_PROPERTY_CHARS = 30_000  # a string property holds 32K UTF-16 characters (64 KiB) at most
_ENTITY_CHARS = 600_000  # an entity holds 1 MiB at most; files beyond this are forgotten early
_TRANSACTION_ENTITIES = 100  # operations in one entity-group transaction
_TRANSACTION_CHARS = 3_000_000  # an entity-group transaction's payload is 4 MiB at most
_SAVE_ATTEMPTS = 5
_MAX_KEY_CHARS = 1_100  # far above a file key in the ledger: a 24-character digest (layout.ledger_key)

ExportKey = tuple[str, str]
_SEQUENCE = itemgetter(0)


class LedgerTable(Protocol):
    """The Table Storage calls the ledger makes (azure.data.tables.TableClient has them)."""

    def query_entities(self, query_filter: str, **kwargs: Any) -> Iterable[Any]: ...

    def get_entity(self, partition_key: str, row_key: str, **kwargs: Any) -> Any: ...

    def submit_transaction(self, operations: Iterable[Any], **kwargs: Any) -> list[Mapping[str, Any]]: ...


class Hold(IntEnum):
    """Whether a file takes live appends. Ordered: at one state, the higher is the later."""

    LIVE = 0
    HELD = 1  # a write failed (or the export is postponed): signals wait in the backlog
    CATCHING = 2  # a writer is appending the backlog, then its own signals, at the held position
    CLOSED = 3  # the replay took the backlog over: the file takes no more live appends


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file's state, when its time bucket ends, and whether it is held.

    A held file had a write fail at `state.length` (or its export was postponed); that write may have
    landed. Its later signals wait in the backlog file of that position (shared.backlog), and only two
    things are ever written at the position: the backlog's signals followed by later ones, by the next
    live writer (a catch-up, claimed here first), or nothing (the replay closed the file and writes
    replay files instead). Either way, what the file holds from the position is a run of its sequence."""

    state: FileState
    bucket_end: float  # POSIX seconds
    hold: Hold = Hold.LIVE
    since: float = 0.0  # when the hold last changed (a catch-up's claim expires: CLAIM_SECONDS)
    # A backlog file's record also says which live file (its ledger key) it holds signals for, and the
    # position that file was held at: the name of the backlog file (shared.backlog.BacklogFile).
    of: str = ""
    at: int = 0

    @property
    def held(self) -> bool:
        return self.hold is not Hold.LIVE

    def join(self, other: FileRecord) -> FileRecord:
        """The later of two views of one file: the longer state; at one state, a closed file stays
        closed, a held one stays held (a write that had nothing to write does not release it), and a
        claim and its outcome are ordered by when they were made."""
        later = other if _order(other) > _order(self) else self
        bucket_end = self.bucket_end if self.bucket_end >= other.bucket_end else other.bucket_end
        of = later.of or self.of
        if later.bucket_end == bucket_end and later.of == of:
            return later  # nearly always: a batch's newer record (no copy)
        return FileRecord(later.state, bucket_end, later.hold, later.since, of, later.at)


_RANK = {Hold.LIVE: 0, Hold.HELD: 1, Hold.CATCHING: 1, Hold.CLOSED: 2}


def _order(record: FileRecord) -> tuple[int, int, int, float, int, float]:
    """The later view first by state, then by hold; claims and holds by when they were made. The last
    two only break ties, so that a join is the same whichever view it is called on."""
    rank = _RANK[record.hold]
    since = record.since if rank == 1 else 0.0
    return (record.state.length, record.state.last_sequence, rank, since, int(record.hold), record.since)


CLAIM_SECONDS = 900.0
"""A catch-up's claim is honoured this long (more than the function timeout, 10 minutes): after it, the
writer that claimed is gone for sure, and the replay may close the file."""


@dataclass
class LedgerEntry:
    """One export's files for one partition, its running counters, and the etag saves depend on."""

    files: dict[str, FileRecord] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    horizon: float = 0.0  # files of buckets that ended before this were forgotten
    dropped_through: int = -1  # signals dropped (disabled export) are counted up to this sequence
    etag: str | None = None

    def backlogs_of(self, file_key: str) -> list[FileRecord]:
        """The records of a live file's backlog files (one per position it was held at)."""
        return [record for record in self.files.values() if record.of == file_key]

    def lookup(self, file_key: str, bucket_end: float) -> FileRecord | Record | None:
        """The file's record; None when the ledger has none; FORGOTTEN for a bucket it forgot."""
        record = self.files.get(file_key)
        if record is not None:
            return record
        return FORGOTTEN if bucket_end < self.horizon else None


@dataclass
class FileUpdate:
    """A batch's new view of one file, with the lines the batch meant for it (to count them)."""

    record: FileRecord
    lines: Sequence[Line]
    backlog: bool = False  # counts as backlogged, not exported
    payload_bytes: int | None = None  # the encoded size of `lines` when known (saves a pass)


@dataclass
class ExportUpdate:
    """What one batch records for one export: its files, write attempts, dropped signals."""

    files: dict[str, FileUpdate] = field(default_factory=dict)
    attempts: Counters = field(default_factory=Counters)  # writes, failures, faults: added as they are
    dropped: list[int] = field(default_factory=list)  # sequence numbers of signals dropped


class PartitionLedger:
    """The ledger of one partition, cached in memory between batches of the instance that owns it."""

    def __init__(self, table: LedgerTable, partition_key: str) -> None:
        self._table = table
        self.partition_key = partition_key
        self._entries: dict[ExportKey, LedgerEntry] | None = None
        self._last_sequence: int | None = None
        self._lock = threading.Lock()

    def begin(self, first_sequence: int) -> None:
        """A batch starts: reload unless it follows the last batch this instance saw of the partition."""
        with self._lock:
            if self._last_sequence is None or first_sequence != self._last_sequence + 1:
                self._entries = None

    def entries(self) -> dict[ExportKey, LedgerEntry]:
        """All exports' entries for the partition: one query, then from memory until reloaded."""
        with self._lock:
            if self._entries is None:
                self._entries = self._load()
            return self._entries

    def fresh(self, export_key: ExportKey) -> LedgerEntry:
        """One export's entry as saved now (one request): the authority after a surprise. The cache
        takes it, so the batch's save counts against it."""
        entry = self._read(export_key) or LedgerEntry()
        with self._lock:
            if self._entries is not None:
                known = self._entries.get(export_key)
                if known is None or entry.etag is not None:
                    self._entries[export_key] = entry
        return entry

    def forget(self) -> None:
        """Drop the cache: the next batch reloads (after an error that may have left it stale)."""
        with self._lock:
            self._entries = None
            self._last_sequence = None

    def record(
        self, updates: Mapping[ExportKey, ExportUpdate], *, horizon: float, last_sequence: int
    ) -> None:
        """Save a batch's records and counts: one transaction per 100 exports (or 4 MiB).

        Counted against the entries as saved: after a conflict, the fresh entries are joined and the
        batch is counted again, so nothing another owner already recorded is counted twice.
        """
        entries = self.entries()
        pending = {key: update for key, update in updates.items() if _changes(update)}
        bases = {key: entries.get(key) or LedgerEntry() for key in pending}
        for _ in range(_SAVE_ATTEMPTS):
            merged = {key: _apply(bases[key], update, horizon) for key, update in pending.items()}
            conflicts = self._save(merged)
            with self._lock:
                if self._entries is not None:
                    for key, entry in merged.items():
                        if key not in conflicts:
                            self._entries[key] = entry
            if not conflicts:
                with self._lock:
                    self._last_sequence = last_sequence
                return
            fresh = self._load(conflicts)
            pending = {key: pending[key] for key in conflicts}
            bases = {key: fresh.get(key) or LedgerEntry() for key in conflicts}
        self.forget()
        raise LedgerConflict(f"ledger of {self.partition_key} kept changing under this instance")

    def claim(
        self, wanted: Mapping[ExportKey, Iterable[str]], now: float
    ) -> dict[ExportKey, dict[str, FileRecord | None]]:
        """Claim held files for a catch-up, saved before anything is appended to them.

        The replay closes a held file in the ledger before it writes its backlog anywhere else
        (`turn_for_replay`), and a catch-up claims it before it appends the backlog to the file: both
        are conditional saves of one entity, so one of them sees the other, and a held file's backlog is
        never written twice. Returns each file's record after the claim: CATCHING when claimed; LIVE,
        CLOSED or None when the file is no longer held, or the replay closed it, meanwhile.
        """
        pending = {key: set(files) for key, files in wanted.items()}
        result: dict[ExportKey, dict[str, FileRecord | None]] = {}
        entries = self.entries()
        for _ in range(_SAVE_ATTEMPTS):
            changed: dict[ExportKey, LedgerEntry] = {}
            for key, file_keys in pending.items():
                entry = entries.get(key) or LedgerEntry()
                files = dict(entry.files)
                for file_key in file_keys:
                    record = files.get(file_key)
                    if record is not None and record.hold in (Hold.HELD, Hold.CATCHING):
                        record = files[file_key] = replace(record, hold=Hold.CATCHING, since=now)
                    result.setdefault(key, {})[file_key] = record
                if files != entry.files:
                    changed[key] = replace(entry, files=files)
            conflicts = self._save(changed)
            with self._lock:
                if self._entries is not None:
                    for key, entry in changed.items():
                        if key not in conflicts:
                            self._entries[key] = entry
            if not conflicts:
                return result
            fresh = self._load(conflicts)
            entries = {**entries, **{key: fresh.get(key) or LedgerEntry() for key in conflicts}}
            with self._lock:
                if self._entries is not None:
                    self._entries.update({key: entries[key] for key in conflicts})
            pending = {key: pending[key] for key in conflicts}
        self.forget()
        raise LedgerConflict(f"ledger of {self.partition_key} kept changing under this instance")

    def _save(self, changed: Mapping[ExportKey, LedgerEntry]) -> set[ExportKey]:
        """Save in transactions; return the keys of transactions that met a conflict."""
        conflicts: set[ExportKey] = set()
        for chunk in _transactions(self.partition_key, changed):
            operations: list[Any] = []
            for _, entry, entity in chunk:
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
                conflicts.update(key for key, _, _ in chunk)
                continue
            for (_, entry, _), result in zip(chunk, results, strict=True):
                entry.etag = str(result["etag"])
        return conflicts

    def _load(self, only: Iterable[ExportKey] | None = None) -> dict[ExportKey, LedgerEntry]:
        entities = self._table.query_entities("PartitionKey eq @p", parameters={"p": self.partition_key})
        wanted = set(only) if only is not None else None
        entries: dict[ExportKey, LedgerEntry] = {}
        for entity in entities:
            key = _export_key(entity)
            if wanted is None or key in wanted:
                entries[key] = from_entity(entity)
        return entries

    def _read(self, export_key: ExportKey) -> LedgerEntry | None:
        try:
            return from_entity(self._table.get_entity(self.partition_key, row_key(*export_key)))
        except ResourceNotFoundError:
            return None


class LedgerConflict(Exception):
    """The ledger could not be saved after repeated conflicts."""


def _changes(update: ExportUpdate) -> bool:
    return bool(update.files or update.attempts or update.dropped)


def _apply(base: LedgerEntry, update: ExportUpdate, horizon: float) -> LedgerEntry:
    """The entry after a batch: its file records joined in, the lines they advance counted. Pure."""
    counters = base.counters.copy()
    counters.add(update.attempts)
    files = dict(base.files)
    for key, change in update.files.items():
        before = files.get(key)
        after = change.record if before is None else before.join(change.record)
        files[key] = after
        since = before.state.last_sequence if before is not None else -1
        count, size = _counted(change, since, after.state.last_sequence)
        if change.backlog:
            counters.backlogged += count
        else:
            counters.exported += count
            counters.exported_bytes += size
    dropped_through = base.dropped_through
    if update.dropped:
        counters.dropped += sum(1 for sequence in update.dropped if sequence > dropped_through)
        dropped_through = max(dropped_through, max(update.dropped))
    if base.horizon > horizon:
        horizon = base.horizon
    backlogs = stale = False  # one pass over the files: nearly always both stay False
    for record in files.values():
        backlogs = backlogs or bool(record.of)
        stale = stale or record.bucket_end < horizon
    if backlogs:
        files = _held_while_backlogged(files)
    if stale:
        files = {key: record for key, record in files.items() if record.bucket_end >= horizon}
    if len(files) * (_MAX_KEY_CHARS + 48) > _ENTITY_CHARS:
        files, horizon = _within_entity(files, update.files.keys(), horizon)
    return LedgerEntry(files, counters, horizon, dropped_through, base.etag)


def _held_while_backlogged(files: dict[str, FileRecord]) -> dict[str, FileRecord]:
    """A live file stays held while one of its backlog files holds a signal the file's record does not
    account for: two owners at once can hold a file at different positions, and the longer record of
    one that went on writing would otherwise let the file take live appends after a signal that only
    the other's backlog holds. Held, the next writer catches the file up: the backlog first."""
    backlogged: dict[str, int] = {}
    for record in files.values():
        if record.of:
            backlogged[record.of] = max(backlogged.get(record.of, -1), record.state.last_sequence)
    for key, through in backlogged.items():
        live = files.get(key)
        if live is not None and live.hold is Hold.LIVE and through > live.state.last_sequence:
            files[key] = replace(live, hold=Hold.HELD)
    return files


def _counted(change: FileUpdate, since: int, until: int) -> tuple[int, int]:
    """How many of the batch's lines for a file, and their bytes, lie in (since, until]."""
    lines = change.lines
    if not lines or until <= since:
        return 0, 0
    start = 0 if lines[0][0] > since else bisect_right(lines, since, key=_SEQUENCE)
    end = len(lines) if lines[-1][0] <= until else bisect_right(lines, until, key=_SEQUENCE)
    if start == 0 and end == len(lines) and change.payload_bytes is not None:
        return end, change.payload_bytes
    return end - start, sum(len(data) + 1 for _, data in lines[start:end])


def _within_entity(
    files: dict[str, FileRecord], current: Collection[str], horizon: float
) -> tuple[dict[str, FileRecord], float]:
    """Keep the entry under Table Storage's 1 MiB entity limit: when the files would outgrow it (a
    Blob export with thousands of signal names a minute), older buckets are forgotten first; the
    files of the batch being recorded are always kept."""
    size = sum(len(key) + 48 for key in files)
    if size <= _ENTITY_CHARS:
        return files, horizon
    for end in sorted({record.bucket_end for key, record in files.items() if key not in current}):
        files = {key: r for key, r in files.items() if r.bucket_end > end or key in current}
        horizon = max(horizon, end + 1e-3)
        if sum(len(key) + 48 for key in files) <= _ENTITY_CHARS:
            break
    return files, horizon


def _transactions(
    partition_key: str, changed: Mapping[ExportKey, LedgerEntry]
) -> Iterable[list[tuple[ExportKey, LedgerEntry, dict[str, Any]]]]:
    chunk: list[tuple[ExportKey, LedgerEntry, dict[str, Any]]] = []
    chars = 0
    for key, entry in changed.items():
        entity = to_entity(partition_key, *key, entry)
        size = 256 + len(entity["counters"]) + sum(len(entity[f"files{i}"]) for i in range(entity["parts"]))
        if chunk and (len(chunk) == _TRANSACTION_ENTITIES or chars + size > _TRANSACTION_CHARS):
            yield chunk
            chunk, chars = [], 0
        chunk.append((key, entry, entity))
        chars += size
    if chunk:
        yield chunk


def to_entity(partition_key: str, project_id: str, export_id: str, entry: LedgerEntry) -> dict[str, Any]:
    """The table entity of an entry. File records are JSON, split over properties of 32K characters."""
    text = orjson.dumps({key: _record_json(r) for key, r in entry.files.items()}).decode()
    if len(text) <= _PROPERTY_CHARS:
        chunks = [text]  # nearly always
    else:
        chunks = [text[i : i + _PROPERTY_CHARS] for i in range(0, len(text), _PROPERTY_CHARS)]
    entity: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key(project_id, export_id),
        "parts": len(chunks),
        "counters": orjson.dumps(entry.counters.to_json()).decode(),
        "horizon": entry.horizon,
        "dropped_through": entry.dropped_through,
    }
    for index, chunk in enumerate(chunks):
        entity[f"files{index}"] = chunk
    return entity


def from_entity(entity: Any) -> LedgerEntry:
    text = "".join(entity.get(f"files{i}", "") for i in range(int(entity.get("parts", 1))))
    raw = orjson.loads(text) if text else {}
    files = {key: _record_of(value) for key, value in raw.items()}
    return LedgerEntry(
        files=files,
        counters=Counters.from_json(orjson.loads(entity.get("counters") or "{}")),
        horizon=float(entity.get("horizon", 0.0)),
        dropped_through=int(entity.get("dropped_through", -1)),
        etag=str(entity.metadata["etag"]),
    )


class ReplayTurn(IntEnum):
    """What the replay may do with a held file's backlog now."""

    REPLAY = 0  # write it elsewhere (a replay file): the file is closed, no longer held, or forgotten
    CATCH_UP = 1  # append it to the file at the held position: claimed for the replay
    WAIT = 2  # a catch-up claimed the file less than CLAIM_SECONDS ago: try again later


def turn_for_replay(
    table: LedgerTable,
    partition_key: str,
    export_key: ExportKey,
    file_key: str,
    now: float,
) -> tuple[ReplayTurn, FileRecord | None]:
    """Claim a held file for a catch-up while its time bucket is current, or close it to live appends
    before its backlog is replayed elsewhere (see `PartitionLedger.claim`)."""
    for _ in range(_SAVE_ATTEMPTS):
        try:
            entry = from_entity(table.get_entity(partition_key, row_key(*export_key)))
        except ResourceNotFoundError:
            return ReplayTurn.REPLAY, None
        record = entry.files.get(file_key)
        if record is None or record.hold in (Hold.LIVE, Hold.CLOSED):
            return ReplayTurn.REPLAY, record
        if record.hold is Hold.CATCHING and now - record.since < CLAIM_SECONDS:
            return ReplayTurn.WAIT, record
        current = now < record.bucket_end
        turn = ReplayTurn.CATCH_UP if current else ReplayTurn.REPLAY
        record = replace(record, hold=Hold.CATCHING if current else Hold.CLOSED, since=now)
        entry.files[file_key] = record
        if _replace(table, partition_key, export_key, entry):
            return turn, record
    raise LedgerConflict(f"ledger of {partition_key} kept changing under the replay")


def settle(
    table: LedgerTable, partition_key: str, export_key: ExportKey, file_key: str, record: FileRecord
) -> None:
    """Record how a catch-up by the replay ended: live again at a longer state, or held again."""
    for _ in range(_SAVE_ATTEMPTS):
        try:
            entry = from_entity(table.get_entity(partition_key, row_key(*export_key)))
        except ResourceNotFoundError:
            return
        known = entry.files.get(file_key)
        entry.files[file_key] = record if known is None else known.join(record)
        if _replace(table, partition_key, export_key, entry):
            return
    raise LedgerConflict(f"ledger of {partition_key} kept changing under the replay")


def _replace(table: LedgerTable, partition_key: str, export_key: ExportKey, entry: LedgerEntry) -> bool:
    """Save one entry, only if unchanged since it was read; False when it changed."""
    options = {
        "mode": UpdateMode.REPLACE,
        "etag": entry.etag,
        "match_condition": MatchConditions.IfNotModified,
    }
    try:
        table.submit_transaction(
            [(TransactionOperation.UPDATE, to_entity(partition_key, *export_key, entry), options)]
        )
    except TableTransactionError:
        return False
    return True


def _record_json(record: FileRecord) -> list[Any]:
    state = [record.state.length, record.state.last_sequence, record.bucket_end]
    if record.of:
        return [*state, int(record.hold), record.since, record.of, record.at]
    return [*state, int(record.hold), record.since] if record.held else state


def _record_of(value: list[Any]) -> FileRecord:
    hold = Hold(int(value[3])) if len(value) > 3 else Hold.LIVE
    since = float(value[4]) if len(value) > 4 else 0.0
    of, at = (str(value[5]), int(value[6])) if len(value) > 6 else ("", 0)
    return FileRecord(FileState(int(value[0]), int(value[1])), float(value[2]), hold, since, of, at)


def read_all(table: Any) -> dict[ExportKey, list[LedgerEntry]]:
    """Every partition's entry, by export: what the health check sums over."""
    entries: dict[ExportKey, list[LedgerEntry]] = {}
    for entity in table.list_entities():
        entries.setdefault(_export_key(entity), []).append(from_entity(entity))
    return entries


def read_partitions_of(table: Any, project_id: str, export_id: str) -> list[LedgerEntry]:
    """One export's entries across partitions (a query on the RowKey: a table scan, fine for the
    occasional health view; the health check reads everything at once with `read_all`)."""
    return [from_entity(entity) for entity in _entities_of(table, project_id, export_id)]


def forget(table: Any, project_id: str, export_id: str) -> None:
    """Delete one export's entries in every partition (the export was deleted)."""
    row = row_key(project_id, export_id)
    for entity in _entities_of(table, project_id, export_id):
        table.delete_entity(entity["PartitionKey"], row)


def partition_key(hub: str, partition: str) -> str:
    """The ledger's PartitionKey of an Event Hub partition."""
    return f"{hub}-{partition}"


def row_key(project_id: str, export_id: str) -> str:
    return f"{project_id}|{export_id}"


def _export_key(entity: Any) -> ExportKey:
    project_id, _, export_id = str(entity["RowKey"]).partition("|")
    return (project_id, export_id)


def _entities_of(table: Any, project_id: str, export_id: str) -> Any:
    return table.query_entities("RowKey eq @r", parameters={"r": row_key(project_id, export_id)})
