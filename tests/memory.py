"""In-memory stand-ins for pure-logic tests: a file store with the sinks' semantics and a Table with
etags. The integration tests run the same code on Azurite and the ADLS Gen2 emulator; these exist so
that property tests can run thousands of interleavings in seconds.

Each behaviour they imitate is the one the real store has, as shared.destinations and shared.ledger rely on
it: appends are positioned and atomic per request; a create is create-if-absent with the owner mark
in the same request; an entity-group transaction is all-or-nothing and conditional on each etag.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError, TransactionOperation, UpdateMode

from shared.delivery import FileGone, FileInfo, PositionConflict


class Crash(BaseException):
    """The process died here (a BaseException: the export path contains Exceptions, not this)."""


class MemoryFiles:
    """Files with positioned, atomic appends; `fault` can fail or kill any operation."""

    def __init__(self, max_append: int = 4 * 1024 * 1024) -> None:
        self.max_append = max_append
        self.files: dict[str, bytearray] = {}
        self.owners: dict[str, str] = {}
        self.appends = 0
        # Called before ("before", op, path) and after ("after", op, path) each operation; it may
        # raise. An exception raised "after" an append comes after the bytes landed.
        self.fault: Callable[[str, str, str], None] = lambda when, op, path: None

    def create(self, path: str, owner: str = "") -> bool:
        self.fault("before", "create", path)
        if path in self.files:
            return False
        self.files[path] = bytearray()
        self.owners[path] = owner
        self.fault("after", "create", path)
        return True

    def length(self, path: str) -> int | None:
        self.fault("before", "read", path)
        data = self.files.get(path)
        return None if data is None else len(data)

    def describe(self, path: str) -> FileInfo | None:
        self.fault("before", "read", path)
        data = self.files.get(path)
        return None if data is None else FileInfo(len(data), self.owners.get(path, ""))

    def append(self, path: str, data: bytes, position: int) -> int:
        self.fault("before", "append", path)
        if path not in self.files:
            raise FileGone(path)
        if len(self.files[path]) != position:
            raise PositionConflict(path)
        assert len(data) <= self.max_append or data.count(b"\n") == 1, "an append over the limit"
        self.files[path] += data
        self.appends += 1
        self.fault("after", "append", path)
        return position + len(data)

    def read(self, path: str, start: int, end: int) -> bytes:
        self.fault("before", "read", path)
        length = end - start  # as the SDKs are asked: an offset and a length
        return bytes(self.files[path][start : start + length])

    def lines(self, path: str) -> list[bytes]:
        return bytes(self.files.get(path, b"")).splitlines()


class MemoryTable:
    """A Table with etags and all-or-nothing entity-group transactions; `fault` as in MemoryFiles."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.etags: dict[tuple[str, str], str] = {}
        self._versions = itertools.count(1)
        self.requests = 0
        self.fault: Callable[[str, str], None] = lambda when, op: None

    def _entity(self, key: tuple[str, str]) -> TableEntity:
        entity = TableEntity(dict(self.rows[key]))
        entity._metadata = {"etag": self.etags[key], "timestamp": None}
        return entity

    def query_entities(self, query_filter: str, **kwargs: Any) -> list[TableEntity]:
        """Entities whose PartitionKey or RowKey equals a parameter, the only filters the service sends.
        Parameters are put in as the SDK does (azure-data-tables 12.7.0, _serialize.py
        `_parameter_filter_substitution`: each `@name` word by parameters[name]); any other filter is
        refused rather than guessed at."""
        self.fault("before", "query")
        self.requests += 1
        words = [
            word if not word.startswith("@") else f"'{kwargs['parameters'][word[1:]]}'"
            for word in query_filter.split(" ")
        ]
        if len(words) != 3 or words[0] not in ("PartitionKey", "RowKey") or words[1] != "eq":
            raise ValueError(f"a filter this in-memory Table does not evaluate: {query_filter}")
        index, value = (0 if words[0] == "PartitionKey" else 1), words[2].removeprefix("'").removesuffix("'")
        return [self._entity(key) for key in sorted(self.rows) if key[index] == value]

    def list_entities(self, **kwargs: Any) -> list[TableEntity]:
        self.requests += 1
        return [self._entity(key) for key in sorted(self.rows)]

    def get_entity(self, partition_key: str, row_key: str, **kwargs: Any) -> TableEntity:
        self.fault("before", "get")
        self.requests += 1
        if (partition_key, row_key) not in self.rows:
            raise ResourceNotFoundError("ResourceNotFound")
        return self._entity((partition_key, row_key))

    def delete_entity(self, partition_key: str, row_key: str, **kwargs: Any) -> None:
        self.rows.pop((partition_key, row_key), None)
        self.etags.pop((partition_key, row_key), None)

    def submit_transaction(self, operations: Iterable[Any], **kwargs: Any) -> list[Mapping[str, Any]]:
        self.fault("before", "transaction")
        self.requests += 1
        operations = list(operations)
        assert len(operations) <= 100, "an entity-group transaction holds 100 operations at most"
        assert len({op[1]["PartitionKey"] for op in operations}) == 1, "one PartitionKey per transaction"
        for operation in operations:
            kind, entity = operation[0], operation[1]
            key = (entity["PartitionKey"], entity["RowKey"])
            if kind == TransactionOperation.CREATE and key in self.rows:
                raise TableTransactionError(message="EntityAlreadyExists")
            if kind == TransactionOperation.UPDATE:
                options = operation[2] if len(operation) > 2 else {}
                conditional = _match_condition(options.get("etag"), options.get("match_condition"))
                if key not in self.rows or (conditional and options["etag"] != self.etags[key]):
                    raise TableTransactionError(message="UpdateConditionNotSatisfied")
        results = []
        for operation in operations:
            entity = operation[1]
            key = (entity["PartitionKey"], entity["RowKey"])
            options = operation[2] if len(operation) > 2 else {}
            # An update merges unless told to replace (azure-data-tables 12.7.0, _table_batch.py
            # `update`: mode=UpdateMode.MERGE): properties the entity no longer has are kept.
            merge = operation[0] == TransactionOperation.UPDATE and options.get("mode") != UpdateMode.REPLACE
            self.rows[key] = {**self.rows[key], **entity} if merge else dict(entity)
            self.etags[key] = f'W/"{next(self._versions)}"'
            results.append({"etag": self.etags[key]})
        self.fault("after", "transaction")
        return results


def _match_condition(etag: str | None, condition: MatchConditions | None) -> bool:
    """Whether an update is conditional on its etag, as the SDK builds the request: an etag counts only
    with IfNotModified, and an etag without it is refused before anything is sent (azure-data-tables
    12.7.0, azure/data/tables/_table_batch.py `update` and _serialize.py `_get_match_condition`)."""
    if condition == MatchConditions.IfNotModified:
        if not etag:
            raise ValueError("IfNotModified must be specified with etag.")
        return True
    if etag:
        raise ValueError("Etag is not supported for an Unconditional operation.")
    return False


class MemoryDeadLetters:
    """Dead letters kept in a list (the Blob container's create-if-absent, by sequence number)."""

    def __init__(self) -> None:
        self.kept: dict[int, Any] = {}

    def put(self, partition: str, rejections: Iterable[Any]) -> int:
        count = 0
        for rejection in rejections:
            self.kept.setdefault(rejection.event.sequence, rejection)
            count += 1
        return count
