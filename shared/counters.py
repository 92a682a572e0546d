"""An export's running counters: what its writes did, summed over batches and partitions.

One type for what the export path counts (per batch), what the ledger keeps (per partition and
export, saved with the file records they count) and what the health check sums (per export).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.outcomes import Cause


@dataclass(slots=True)
class Counters:
    """Signals by outcome, and write attempts. Times are POSIX seconds, 0 when never."""

    exported: int = 0  # signals written to the destination
    exported_bytes: int = 0  # their bytes, newlines included
    backlogged: int = 0  # signals kept in the backlog
    dropped: int = 0  # signals of a disabled export, not kept
    writes_ok: int = 0  # destination writes that succeeded
    writes_failed: int = 0  # destination writes that failed for a cause of the customer's
    failed: dict[str, int] = field(default_factory=dict)  # signals of failed writes, by cause
    faults: int = 0  # signals kept because of an error of the service's own (never the customer's)
    last_success: int = 0
    last_failure: int = 0
    last_error: str = ""  # the error code of the latest failure

    def add(self, other: Counters, *, signals: bool = True) -> None:
        """Add another count of the same export (a later batch, or another partition); without its
        signals written (`signals=False`: the write attempts only). Spelled out: it runs per export
        and batch on the export path."""
        if signals:
            self.exported += other.exported
            self.exported_bytes += other.exported_bytes
        self.backlogged += other.backlogged
        self.dropped += other.dropped
        self.writes_ok += other.writes_ok
        self.writes_failed += other.writes_failed
        self.faults += other.faults
        if other.failed:
            failed = self.failed
            for cause, count in other.failed.items():
                failed[cause] = failed.get(cause, 0) + count
        if other.last_failure >= self.last_failure and other.last_error:
            self.last_error = other.last_error
        if other.last_success > self.last_success:
            self.last_success = other.last_success
        if other.last_failure > self.last_failure:
            self.last_failure = other.last_failure

    def __add__(self, other: Counters) -> Counters:
        total = self.copy()
        total.add(other)
        return total

    def since(self, earlier: Counters) -> Counters:
        """What happened between an earlier snapshot of these running counters and this one."""
        delta = Counters(
            **{name: max(0, getattr(self, name) - getattr(earlier, name)) for name in _SUMMED},
            last_success=self.last_success,
            last_failure=self.last_failure,
            last_error=self.last_error,
        )
        for cause, signals in self.failed.items():
            change = signals - earlier.failed.get(cause, 0)
            if change > 0:
                delta.failed[cause] = change
        return delta

    @property
    def failures(self) -> int:
        """Signals whose write failed, all causes."""
        return sum(self.failed.values())

    def copy(self) -> Counters:
        return Counters(
            self.exported,
            self.exported_bytes,
            self.backlogged,
            self.dropped,
            self.writes_ok,
            self.writes_failed,
            dict(self.failed),
            self.faults,
            self.last_success,
            self.last_failure,
            self.last_error,
        )

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in _SUMMED) or bool(self.failed)

    def to_json(self) -> dict[str, Any]:
        """Compact: only what is set."""
        raw: dict[str, Any] = {}
        if self.exported:
            raw["exported"] = self.exported
        if self.exported_bytes:
            raw["exported_bytes"] = self.exported_bytes
        if self.backlogged:
            raw["backlogged"] = self.backlogged
        if self.dropped:
            raw["dropped"] = self.dropped
        if self.writes_ok:
            raw["writes_ok"] = self.writes_ok
        if self.writes_failed:
            raw["writes_failed"] = self.writes_failed
        if self.faults:
            raw["faults"] = self.faults
        if self.last_success:
            raw["last_success"] = self.last_success
        if self.last_failure:
            raw["last_failure"] = self.last_failure
        if self.last_error:
            raw["last_error"] = self.last_error
        if self.failed:
            raw["failed"] = dict(self.failed)
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Counters:
        """Read what `to_json` wrote; unknown names (a newer or older version's) are ignored."""
        counters = cls(**{name: type(getattr(_DEFAULT, name))(raw[name]) for name in _NAMES if name in raw})
        failed = raw.get("failed")
        if isinstance(failed, Mapping):
            counters.failed = {str(cause): int(n) for cause, n in failed.items() if str(cause) in _CAUSES}
        return counters


_DEFAULT = Counters()
_SUMMED = ("exported", "exported_bytes", "backlogged", "dropped", "writes_ok", "writes_failed", "faults")
_NAMES = (*_SUMMED, "last_success", "last_failure", "last_error")
_CAUSES = {cause.value for cause in Cause}
