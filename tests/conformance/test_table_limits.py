"""Table storage rows: the service's own entities within Azure's limits (Azurite enforces the property
size; the transaction size and the entity size are the service's to keep)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared.delivery import FileState
from shared.ledger import FileRecord, PartitionLedger
from shared.runtime import Runtime
from tests.conformance import sources

pytestmark = pytest.mark.integration

KEEP_AFTER = datetime(2026, 3, 7, tzinfo=UTC)
BUCKET_END = datetime(2026, 3, 8, tzinfo=UTC).timestamp()
EXPORTS = sources.TABLE_TRANSACTION_OPERATIONS_MAX + 50


def test_one_batch_touching_more_exports_than_a_transaction_takes_saves_them_all(service: Runtime) -> None:
    """An entity-group transaction takes at most 100 operations (Azurite breaks the connection at
    101): the records of a batch that wrote to 150 exports are all saved and read back."""
    partition = PartitionLedger(service.ledger_table, f"hub-{uuid.uuid4().hex[:8]}")
    written = {
        ("proj", f"e{n}"): {f"file-{n}": FileRecord(FileState(10, n), BUCKET_END)} for n in range(EXPORTS)
    }
    partition.record(written, {key: {"exported": 1} for key in written}, keep_after=KEEP_AFTER)
    reread = PartitionLedger(service.ledger_table, partition.partition_key).entries()
    assert {key: entry.state(next(iter(written[key]))) for key, entry in reread.items()} == {
        key: next(iter(files.values())).state for key, files in written.items()
    }


def test_a_ledger_entry_longer_than_a_string_property_is_split_across_properties(service: Runtime) -> None:
    """A string property holds 32K UTF-16 characters (Azurite refuses more, as Azure does): an export
    with many files in flight is saved in several properties and reads back whole."""
    partition = PartitionLedger(service.ledger_table, f"hub-{uuid.uuid4().hex[:8]}")
    files = {f"{'d' * 200}/{n:05d}.blob": FileRecord(FileState(n, n), BUCKET_END) for n in range(400)}
    assert sum(len(key) for key in files) > sources.TABLE_STRING_PROPERTY_MAX_CHARS
    partition.record({("proj", "many"): files}, {}, keep_after=KEEP_AFTER)
    reread = PartitionLedger(service.ledger_table, partition.partition_key).entries()[("proj", "many")]
    assert reread.files == files
