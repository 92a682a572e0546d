"""Fault injection and the request log.

Faults let product tests reproduce what the real service does under stress
(503 ServerBusy, slow responses, connections reset) deterministically. The
request log lets benchmarks and tests count exactly which operations the
product sent.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Logical operation names shared by the dfs and Blob endpoints: a fault on
# "createFilesystem" fires whether the SDK created the filesystem through the
# dfs API or (as DataLakeServiceClient.create_file_system does) through Blob.
OPERATIONS = frozenset(
    {
        # account level
        "listFilesystems",
        "userDelegationKey",
        # filesystem / container level
        "createFilesystem",
        "deleteFilesystem",
        "getFilesystemProperties",
        "setFilesystemProperties",
        "listPaths",
        # path level
        "create",
        "rename",
        "append",
        "flush",
        "setProperties",
        "setAccessControl",
        "getAccessControl",
        "getProperties",
        "read",
        "delete",
        "setMetadata",
        "upload",
        "lease",
        "unsupported",
    }
)


@dataclass
class Fault:
    """A rule that makes matching requests fail, slow down or drop.

    A request matches when every non-None selector matches: ``operations``
    (logical operation names, see ``OPERATIONS``), ``account``, ``path_prefix``
    (``"filesystem/dir/..."``, relative to the account, no leading slash).
    ``times`` limits how often the fault fires before it removes itself.
    ``latency`` seconds are added before responding. ``drop_connection`` closes
    the socket without any response. ``status=None`` with only ``latency`` just
    delays the request, which is then served normally.
    """

    status: int | None = 503
    code: str = "ServerBusy"
    message: str = "The server is busy."
    operations: set[str] | frozenset[str] | None = None
    account: str | None = None
    path_prefix: str | None = None
    times: int | None = None
    latency: float = 0.0
    drop_connection: bool = False

    def __post_init__(self) -> None:
        if self.operations is not None:
            self.operations = frozenset(self.operations)
            unknown = self.operations - OPERATIONS
            if unknown:
                raise ValueError(f"unknown operation(s) {sorted(unknown)}; known: {sorted(OPERATIONS)}")
        if self.path_prefix is not None:
            self.path_prefix = self.path_prefix.lstrip("/")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be a positive integer or None")
        if self.latency < 0:
            raise ValueError("latency must not be negative")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"invalid HTTP status {self.status}")

    def matches(self, operation: str, account: str, path: str) -> bool:
        if self.operations is not None and operation not in self.operations:
            return False
        if self.account is not None and account != self.account:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build a Fault from the control endpoint's JSON body; reject unknown fields."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {sorted(unknown)}")
        kwargs = dict(data)
        if kwargs.get("operations") is not None:
            ops = kwargs["operations"]
            if isinstance(ops, str) or not isinstance(ops, Iterable):
                raise ValueError("operations must be a list of operation names")
            kwargs["operations"] = frozenset(str(op) for op in ops)
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.operations is not None:
            data["operations"] = sorted(self.operations)
        return data


@dataclass(frozen=True)
class FaultOutcome:
    """What the matching faults decided for one request."""

    latency: float = 0.0
    fault: Fault | None = None  # the fault that answers (status or drop), if any


class FaultRegistry:
    """Thread-safe ordered set of active faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[int, Fault] = {}
        self._ids = itertools.count(1)

    def add(self, fault: Fault) -> int:
        with self._lock:
            fault_id = next(self._ids)
            self._faults[fault_id] = fault
            return fault_id

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def snapshot(self) -> dict[int, Fault]:
        with self._lock:
            return dict(self._faults)

    def match(self, operation: str, account: str, path: str) -> FaultOutcome:
        """Apply every matching fault once: latencies add up, the first failing one answers."""
        latency = 0.0
        answering: Fault | None = None
        with self._lock:
            for fault_id, fault in list(self._faults.items()):
                if not fault.matches(operation, account, path):
                    continue
                latency += fault.latency
                if answering is None and (fault.drop_connection or fault.status is not None):
                    answering = fault
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[fault_id]
        return FaultOutcome(latency=latency, fault=answering)


@dataclass(frozen=True)
class RequestRecord:
    """One served request. ``path`` is ``"filesystem/dir/file"`` relative to the
    account (``""`` for account-level calls); ``status`` is 0 when a fault
    dropped the connection without a response."""

    method: str
    operation: str
    account: str
    path: str
    status: int


@dataclass
class RequestLog:
    """Thread-safe, append-only log of served requests."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _records: list[RequestRecord] = field(default_factory=list)

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
