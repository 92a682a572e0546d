"""Table storage rows: the service's own entities within Azure's limits (Azurite enforces the property
size; the transaction size and the entity size are the service's to keep)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from shared.api.rules import MAX_SIGNAL_NAME, MAX_SIGNALS
from shared.delivery import FileState
from shared.layout import ledger_key
from shared.ledger import ExportKey, ExportUpdate, FileRecord, FileUpdate, PartitionLedger
from shared.model import AdlsDestination, Export, Secret
from shared.runtime import Runtime
from tests.conformance import sources

pytestmark = pytest.mark.integration

HORIZON = datetime(2026, 3, 7, tzinfo=UTC).timestamp()
BUCKET_END = datetime(2026, 3, 8, tzinfo=UTC).timestamp()
EXPORTS = sources.TABLE_TRANSACTION_OPERATIONS_MAX + 50


def record(partition: PartitionLedger, files: dict[ExportKey, dict[str, FileRecord]]) -> None:
    updates = {
        key: ExportUpdate(files={k: FileUpdate(r, []) for k, r in f.items()}) for key, f in files.items()
    }
    partition.record(updates, horizon=HORIZON, last_sequence=0)


def test_one_batch_touching_more_exports_than_a_transaction_takes_saves_them_all(service: Runtime) -> None:
    """An entity-group transaction takes at most 100 operations (Azurite breaks the connection at
    101): the records of a batch that wrote to 150 exports are all saved and read back."""
    partition = PartitionLedger(service.ledger_table, f"hub-{uuid.uuid4().hex[:8]}")
    written = {
        ("proj", f"e{n}"): {f"file-{n}": FileRecord(FileState(10, n), BUCKET_END)} for n in range(EXPORTS)
    }
    record(partition, written)
    reread = PartitionLedger(service.ledger_table, partition.partition_key).entries()
    assert {key: entry.files for key, entry in reread.items()} == written


def test_a_ledger_entry_longer_than_a_string_property_is_split_across_properties(service: Runtime) -> None:
    """A string property holds 32K UTF-16 characters (Azurite refuses more, as Azure does): an export
    with many files in flight is saved in several properties and reads back whole."""
    partition = PartitionLedger(service.ledger_table, f"hub-{uuid.uuid4().hex[:8]}")
    files = {f"{'d' * 200}/{n:05d}.blob": FileRecord(FileState(n, n), BUCKET_END) for n in range(400)}
    assert sum(len(key) for key in files) > sources.TABLE_STRING_PROPERTY_MAX_CHARS
    record(partition, {("proj", "many"): files})
    reread = PartitionLedger(service.ledger_table, partition.partition_key).entries()[("proj", "many")]
    assert reread.files == files


def test_ledger_entity_stays_within_the_entity_limit(service: Runtime) -> None:
    """A table entity is at most 1 MiB (Azurite does not check, so the test measures the entity the
    ledger writes). A Blob export whose signals carry thousands of names a minute keeps thousands of
    files in flight: older buckets are forgotten early so that the entity stays within the limit, and
    the files of the batch being recorded are always kept."""
    partition = PartitionLedger(service.ledger_table, f"hub-{uuid.uuid4().hex[:8]}")
    minute = 60.0
    for batch in range(6):  # six minutes of 4,000 new files each
        end = BUCKET_END + batch * minute
        files = {ledger_key(f"{batch}/{n}"): FileRecord(FileState(100, n), end) for n in range(4000)}
        record(partition, {("proj", "names"): files})
        entity = service.ledger_table.get_entity(partition.partition_key, "proj|names")
        size = sum(len(str(name)) * 2 + len(str(value)) * 2 for name, value in entity.items())
        assert size <= sources.TABLE_ENTITY_MAX_BYTES, f"batch {batch}: {size} bytes"
        entry = PartitionLedger(service.ledger_table, partition.partition_key).entries()[("proj", "names")]
        assert files.keys() <= entry.files.keys()  # this batch's files are all there


def test_an_export_selecting_the_most_signals_the_api_accepts_is_stored_and_read_back(
    service: Runtime,
) -> None:
    """1,000 signal names of 256 characters (about 260,000 characters: eight times what one string
    property holds) are split over several properties and read back whole."""
    names = frozenset(f"{n:04d}".ljust(MAX_SIGNAL_NAME, "x") for n in range(MAX_SIGNALS))
    assert len(orjson.dumps(sorted(names))) > sources.TABLE_STRING_PROPERTY_MAX_CHARS
    export = Export(
        f"p{uuid.uuid4().hex[:8]}",
        "many",
        AdlsDestination("https://a.dfs.core.windows.net", "fs", "d", Secret("a2V5")),
        names,
    )
    service.exports.put(export)
    assert service.exports.get(*export.key)[0].signals == names
