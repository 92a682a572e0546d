"""Table storage rows: the service's own entities within Azure's limits (Azurite enforces the property
size; the transaction size and the entity size are the service's to keep)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared import ledger
from shared.delivery import FileState
from shared.ledger import FileRecord, PartitionLedger
from shared.runtime import Runtime
from tests.conformance import sources

pytestmark = pytest.mark.integration

KEEP_AFTER = datetime(2026, 3, 7, tzinfo=UTC)
BUCKET_END = datetime(2026, 3, 8, tzinfo=UTC).timestamp()


def test_one_batch_touching_150_exports_saves_in_transactions_of_at_most_100(service: Runtime) -> None:
    """An entity-group transaction takes at most 100 operations: the ledger's records of a batch that
    wrote to 150 exports are saved in two, and all 150 read back."""
    assert ledger._TRANSACTION_SIZE <= sources.TABLE_TRANSACTION_OPERATIONS_MAX
    partition = PartitionLedger(service.ledger_table, f"hub-{uuid.uuid4().hex[:8]}")
    written = {("proj", f"e{n}"): {f"file-{n}": FileRecord(FileState(10, n), BUCKET_END)} for n in range(150)}
    partition.record(written, {key: {"exported": 1} for key in written}, keep_after=KEEP_AFTER)
    reread = PartitionLedger(service.ledger_table, partition.partition_key).entries()
    assert {key: entry.state(next(iter(written[key]))) for key, entry in reread.items()} == {
        key: next(iter(files.values())).state for key, files in written.items()
    }


def test_a_ledger_entry_longer_than_a_string_property_is_split_across_properties(service: Runtime) -> None:
    """A string property holds 32K UTF-16 characters (Azurite refuses more, as Azure does): an export
    with many files in flight is saved in several properties and reads back whole."""
    assert ledger._PROPERTY_CHARS <= sources.TABLE_STRING_PROPERTY_MAX_CHARS
    partition = PartitionLedger(service.ledger_table, f"hub-{uuid.uuid4().hex[:8]}")
    files = {f"{'d' * 200}/{n:05d}.blob": FileRecord(FileState(n, n), BUCKET_END) for n in range(400)}
    partition.record({("proj", "many"): files}, {}, keep_after=KEEP_AFTER)
    reread = PartitionLedger(service.ledger_table, partition.partition_key).entries()[("proj", "many")]
    assert reread.files == files
