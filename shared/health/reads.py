"""What a health check reads to judge one project's due exports, in as few requests as it can: each
table once per project (a partition query when several of its exports are due, a point read for one),
the ledger once per ledger partition the export path marked (a range of the project's rows, or one
row), and nothing at all for what this process judged at the previous check and saw no change to.

That last part is a hint checked, never trusted: an export is read again whenever the due index says it
changed (every write to an export marks it: `Exports`' hook), and a record is saved only if unchanged
since this process saved it (`HealthRecords.save_if`), so a stale one is read again and judged again
before anything is done on it (shared.health.check). Only what this process judged at the check just
before is kept: another instance may have judged the export since.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from shared.counters import Counters
from shared.exports import Exports, ExportUnreadable
from shared.health.due import Due
from shared.health.records import HealthRecord, HealthRecords
from shared.ledger import ExportKey, counters_of, from_entity
from shared.ledger import row_key as ledger_row
from shared.model import Export

Found = Export | ExportUnreadable | None  # None: there is no such export (deleted)


@dataclass
class ProjectReads:
    """What was read for one project's due exports, for their first attempt."""

    exports: dict[ExportKey, Found] = field(default_factory=dict)
    records: dict[ExportKey, tuple[HealthRecord | None, str | None]] = field(default_factory=dict)
    counters: dict[tuple[ExportKey, str], Counters | None] = field(default_factory=dict)


class Reads:
    """The health check's reads, and what this process judged at its last check."""

    def __init__(self, *, store: Exports, records: HealthRecords, ledger_table: TableClient) -> None:
        self._store = store
        self._records = records
        self._ledger_table = ledger_table
        self._lock = threading.Lock()
        self._exports: dict[ExportKey, tuple[int, Export]] = {}
        self._saved: dict[ExportKey, tuple[int, HealthRecord, str]] = {}

    def project(self, dues: Sequence[Due], seq: int) -> ProjectReads:
        """Everything the first judgment of these exports (one project's) reads, at check `seq`."""
        reads = ProjectReads()
        project_id = dues[0].key[0]
        with self._lock:
            for due in dues:
                seen = self._exports.get(due.key)
                if seen is not None and seen[0] == seq - 1 and not _changed(due):
                    reads.exports[due.key] = seen[1]
                saved = self._saved.get(due.key)
                if saved is not None and saved[0] == seq - 1:
                    reads.records[due.key] = (saved[1], saved[2])
        wanted = [due.key for due in dues if due.key not in reads.exports]
        if len(wanted) == 1:
            reads.exports[wanted[0]] = self.export(wanted[0])
        elif wanted:
            readable, unreadable = self._store.scan(project_id)
            found: dict[ExportKey, Found] = {export.key: export for export in readable}
            found.update({(error.project_id, error.export_id): error for error in unreadable})
            reads.exports.update({key: found.get(key) for key in wanted})
        wanted = [due.key for due in dues if due.key not in reads.records]
        if len(wanted) == 1:
            reads.records[wanted[0]] = self._records.read(*wanted[0])
        elif wanted:
            records = self._records.read_project(project_id)
            reads.records.update({key: records.get(key[1], (None, None)) for key in wanted})
        by_partition: dict[str, list[ExportKey]] = {}
        for due in dues:
            for partition in due.ledger_partitions:
                by_partition.setdefault(partition, []).append(due.key)
        for partition, keys in by_partition.items():
            reads.counters.update(self._ledger(partition, project_id, keys))
        return reads

    def export(self, key: ExportKey) -> Found:
        """The export as stored now."""
        try:
            found = self._store.find(*key)
        except ExportUnreadable as error:
            return error
        return None if found is None else found.export

    def counters(
        self, key: ExportKey, partitions: Iterable[str]
    ) -> dict[tuple[ExportKey, str], Counters | None]:
        """The export's counters in these ledger partitions, as saved now."""
        found: dict[tuple[ExportKey, str], Counters | None] = {}
        for partition in partitions:
            found.update(self._ledger(partition, key[0], [key]))
        return found

    def every_partition(self, key: ExportKey) -> dict[str, Counters]:
        """The export's counters in every ledger partition: a query on the RowKey, which scans the
        table; only for a record of an earlier version, once."""
        return counters_of(self._ledger_table, *key)

    def _ledger(
        self, partition: str, project_id: str, keys: Sequence[ExportKey]
    ) -> dict[tuple[ExportKey, str], Counters | None]:
        """One row (point read), or the project's rows of the partition (a range: the ledger's rows
        are `<project>|<export>`, and `}` follows `|`)."""
        if len(keys) == 1:
            try:
                entity = self._ledger_table.get_entity(partition, ledger_row(*keys[0]))
            except ResourceNotFoundError:
                return {(keys[0], partition): None}
            return {(keys[0], partition): from_entity(entity).counters}
        found: dict[tuple[ExportKey, str], Counters | None] = {(key, partition): None for key in keys}
        entities = self._ledger_table.query_entities(
            "PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
            parameters={"p": partition, "low": f"{project_id}|", "high": f"{project_id}}}"},
        )
        for entity in entities:
            key = (project_id, str(entity["RowKey"]).partition("|")[2])
            if (key, partition) in found:
                found[(key, partition)] = from_entity(entity).counters
        return found

    # -- what this process judged

    def remember(self, export: Export, record: HealthRecord, etag: str, seq: int) -> None:
        """The export as judged at check `seq`, and its record as saved (or read) with `etag`."""
        with self._lock:
            self._exports[export.key] = (seq, export)
            self._saved[export.key] = (seq, record, etag)

    def forget(self, key: ExportKey) -> None:
        with self._lock:
            self._exports.pop(key, None)
            self._saved.pop(key, None)

    def keep_from(self, seq: int) -> None:
        """Drop what was judged before check `seq - 1`: memory follows the exports judged lately."""
        with self._lock:
            for cache in (self._exports, self._saved):
                for key in [key for key, value in cache.items() if value[0] < seq - 1]:
                    del cache[key]


def _changed(due: Due) -> bool:
    """Whether a row says the export itself changed (or a deadline fell due): read it again then."""
    return any(not row.watched and not row.ledger_partition for row in due.rows)
