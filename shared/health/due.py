"""What falls due for the health check: the exports it must judge at a check, so that its work follows
the exports that have something to judge, never the number of exports.

Table `exportdue` (PartitionKey, RowKey):

- `due-<minute>`, `<project>|<export>|<ledger partition>`: the export path recorded the export's writes in
  that ledger partition during that minute (minutes since the epoch, 10 digits). Written after the
  ledger is saved, at most once per minute, process and ledger partition.
- `due-<minute>`, `<project>|<export>|`: something else made the export due in that minute: the
  export was created or changed (`Exports`' writes), or a deadline the health check set falls then (the
  end of a postponed export's retention).
- `due!watch`, `<project>|<export>|`: an export judged at every check while it needs it: a backlog to
  measure, tend and expire, a postponed export to probe, a state change to finish, a row that cannot be
  read. (`!` sorts before `-`: the watch list and the minutes are one range.)
- `state`, `check`: the checks' sequence number, the work items still open, and the sweep of the
  exports table (shared.health.check).

Reading what is due is one range query (from `due!watch` to the current minute's partition): rows are
deleted once judged, so the range holds only what is pending, and deadlines further ahead are never read
before they fall due. The rows of one minute share a partition, so one batch's marks are one
entity-group transaction, and so are the deletions of up to 100 judged rows.

Why nothing is missed, with marks that are neither transactional with the ledger nor read exactly once:

- **After, never before.** A mark is written after the change it stands for (the ledger save, the
  change to the export), so whoever reads the mark reads the change. A crash between the two leaves the
  Event Hub batch uncheckpointed: it is delivered again, saved again and marked.
- **Deleted only as read.** A row is deleted conditionally on the etag read, so a mark written again
  meanwhile stays for the next check.
- **A minute's marks outlive the minute.** A process marks an export once per minute and ledger
  partition: a later save in the same minute relies on the first mark. So the export path's marks
  are judged, but only deleted once their minute ended `CLOSE_SECONDS` ago (clocks of instances
  differ by less): the check that deletes one has read the ledger after every save it covered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, TransactionOperation, UpdateMode

from shared.ledger import ExportKey, ExportUpdate, LedgerTable, PartitionLedger

log = logging.getLogger("signals_export.health")

MINUTE = 60.0
CLOSE_SECONDS = 30.0
"""How long after its minute a minute's marks are kept: more than instances' clocks differ."""
DUE = "due-"
WATCH = "due!watch"  # sorts before every `due-<minute>`
STATE = "state"
_TRANSACTION = 100  # operations in one entity-group transaction
_LAST = "~"  # sorts after every id character and `|`


def minute_of(at: float) -> int:
    return int(at // MINUTE)


def due_partition(at: float) -> str:
    """The partition of the rows due at `at`."""
    return f"{DUE}{minute_of(at):010d}"


def row_key(key: ExportKey, ledger_partition: str = "") -> str:
    return f"{key[0]}|{key[1]}|{ledger_partition}"


@dataclass(frozen=True, slots=True)
class DueRow:
    """One row of the index as read: why an export is due, and the etag it may be deleted on."""

    partition: str
    row: str
    etag: str

    @property
    def key(self) -> ExportKey:
        project_id, export_id, _ = self.row.split("|", 2)
        return (project_id, export_id)

    @property
    def ledger_partition(self) -> str:
        """The ledger partition whose counters changed; "" for a row that is not the export path's."""
        return self.row.split("|", 2)[2]

    @property
    def watched(self) -> bool:
        return self.partition == WATCH

    def removable(self, now: float) -> bool:
        """Whether a judged row may go: the export path's marks only once their minute is over."""
        if self.watched or not self.ledger_partition:
            return True
        minute = int(self.partition[len(DUE) :])
        return now >= (minute + 1) * MINUTE + CLOSE_SECONDS


@dataclass
class Due:
    """What is due for one export at a check: the rows that say so."""

    key: ExportKey
    rows: list[DueRow]

    @property
    def ledger_partitions(self) -> set[str]:
        return {row.ledger_partition for row in self.rows if row.ledger_partition}

    @property
    def watch_row(self) -> DueRow | None:
        return next((row for row in self.rows if row.watched), None)


class DueIndex:
    """The `exportdue` table: marks, deadlines and the watch list."""

    def __init__(self, table: TableClient, *, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock
        self._marked: tuple[int, set[tuple[ExportKey, str]]] = (-1, set())
        self._lock = threading.Lock()

    # -- writing

    def recorded(self, ledger_partition: str, keys: Iterable[ExportKey]) -> None:
        """The export path saved these exports' entries in a ledger partition: mark them for the
        next check, once per minute and process (see the module's docstring)."""
        now = self._clock()
        minute = minute_of(now)
        with self._lock:
            marked = self._marked[1] if self._marked[0] == minute else set()
            wanted = [key for key in dict.fromkeys(keys) if (key, ledger_partition) not in marked]
        if not wanted:
            return
        partition = due_partition(now)
        rows = [{"PartitionKey": partition, "RowKey": row_key(key, ledger_partition)} for key in wanted]
        for start in range(0, len(rows), _TRANSACTION):
            chunk = rows[start : start + _TRANSACTION]
            self._table.submit_transaction([(TransactionOperation.UPSERT, row) for row in chunk])
        with self._lock:
            if self._marked[0] != minute:
                self._marked = (minute, set())
            self._marked[1].update((key, ledger_partition) for key in wanted)

    def changed(self, project_id: str, export_id: str) -> None:
        """The export was created, changed or deleted: judge it at the next check."""
        self.schedule((project_id, export_id), self._clock())

    def schedule(self, key: ExportKey, at: float) -> None:
        """Judge the export at the first check from `at` on."""
        self._table.upsert_entity({"PartitionKey": due_partition(at), "RowKey": row_key(key)})

    def schedule_many(self, keys: Sequence[ExportKey], at: float) -> None:
        """Judge these exports at the first check from `at` on (one transaction per 100)."""
        partition = due_partition(at)
        for start in range(0, len(keys), _TRANSACTION):
            chunk = keys[start : start + _TRANSACTION]
            operations = [
                (TransactionOperation.UPSERT, {"PartitionKey": partition, "RowKey": row_key(key)})
                for key in chunk
            ]
            self._table.submit_transaction(operations)

    def watch(self, key: ExportKey) -> None:
        """Judge the export at every check until `unwatch`."""
        self._table.upsert_entity({"PartitionKey": WATCH, "RowKey": row_key(key)})

    def unwatch(self, row: DueRow) -> None:
        """Stop watching, unless the row changed since it was read."""
        self._delete(row)

    # -- reading

    def pending(self, *, low: str = "", high: str = _LAST) -> list[Due]:
        """What is due now, for the exports whose `<project>|<export>` lies in [low, high): the watch
        list and every row due up to this minute, grouped by export, in key order."""
        query = "PartitionKey ge @first and PartitionKey le @last and RowKey ge @low and RowKey lt @high"
        parameters = {"first": WATCH, "last": due_partition(self._clock()), "low": low, "high": high}
        found: dict[ExportKey, list[DueRow]] = defaultdict(list)
        for entity in self._table.query_entities(
            query, parameters=parameters, select=["PartitionKey", "RowKey"]
        ):
            row = DueRow(str(entity["PartitionKey"]), str(entity["RowKey"]), str(entity.metadata["etag"]))
            found[row.key].append(row)
        return [Due(key, found[key]) for key in sorted(found)]

    # -- deleting

    def done(self, rows: Iterable[DueRow]) -> int:
        """Delete the judged rows that may go (`DueRow.removable`), each only as it was read: one
        transaction per partition and 100 rows, row by row when one of them changed meanwhile.
        Returns how many were deleted."""
        now = self._clock()
        by_partition: dict[str, list[DueRow]] = defaultdict(list)
        for row in rows:
            if row.removable(now):
                by_partition[row.partition].append(row)
        deleted = 0
        for chunk in (
            batch[start : start + _TRANSACTION]
            for batch in by_partition.values()
            for start in range(0, len(batch), _TRANSACTION)
        ):
            operations: list[Any] = [
                (
                    TransactionOperation.DELETE,
                    {"PartitionKey": row.partition, "RowKey": row.row},
                    {"etag": row.etag, "match_condition": MatchConditions.IfNotModified},
                )
                for row in chunk
            ]
            try:
                self._table.submit_transaction(operations)
                deleted += len(chunk)
            except TableTransactionError:  # one changed or went: the others one by one
                deleted += sum(self._delete(row) for row in chunk)
        return deleted

    def _delete(self, row: DueRow) -> bool:
        try:
            self._table.delete_entity(
                row.partition, row.row, etag=row.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceNotFoundError:
            return False
        except HttpResponseError as error:
            if error.status_code == 412:
                return False  # written again meanwhile: due again
            raise
        return True

    # -- the state rows (shared.health.check's)

    def state(self, name: str) -> tuple[dict[str, Any], str | None]:
        """A state row and its etag; an empty row and None when there is none."""
        try:
            entity = self._table.get_entity(STATE, name)
        except ResourceNotFoundError:
            return {}, None
        return dict(entity), str(entity.metadata["etag"])

    def save_state(self, name: str, values: Mapping[str, Any], etag: str | None) -> str | None:
        """Save a state row only if unchanged since it was read (created if there was none); the new
        etag, or None when another check changed it meanwhile."""
        entity = {**values, "PartitionKey": STATE, "RowKey": name}
        try:
            if etag is None:
                result = self._table.create_entity(entity)
            else:
                result = self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError:
            return None
        except HttpResponseError as error:
            if error.status_code == 412:
                return None
            raise
        return str(result["etag"])


class MarkedLedger(PartitionLedger):
    """A partition's ledger that marks, once saved, the exports whose counters a batch changed: the
    health check judges those (shared.health.due)."""

    def __init__(self, table: LedgerTable, partition_key: str, *, due: DueIndex) -> None:
        super().__init__(table, partition_key)
        self._due = due

    def record(
        self, updates: Mapping[ExportKey, ExportUpdate], *, horizon: float, last_sequence: int
    ) -> None:
        super().record(updates, horizon=horizon, last_sequence=last_sequence)
        changed = [
            key for key, update in updates.items() if update.files or update.attempts or update.dropped
        ]
        if changed:
            self._due.recorded(self.partition_key, changed)
