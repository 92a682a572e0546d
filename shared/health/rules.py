"""How health is judged: an export's recent write outcomes turned into a state change, and the
customer's view of it. Pure: the health check (shared.health.check) brings the numbers and the clock.

States: `active` writes; `postponed` writes nothing and keeps every matching signal in the backlog;
`disabled` (postponed for the whole retention period) keeps nothing and counts what it drops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shared.counters import Counters
from shared.model import ExportStatus
from shared.outcomes import Cause

FATAL = (Cause.AUTHENTICATION, Cause.NOT_FOUND, Cause.REJECTED)
_CAUSES = frozenset(cause.value for cause in Cause)
CONFIGURATION_UNREADABLE = "configuration-unreadable"  # the service cannot read the export's row

EXPLANATIONS: dict[str, str] = {
    Cause.AUTHENTICATION: "The storage account refused the key: it was probably regenerated.",
    Cause.NOT_FOUND: "The storage account, filesystem or container no longer exists.",
    Cause.THROTTLED: "The storage account is throttling writes: its request rate limit is reached.",
    Cause.TRANSIENT: "The storage account could not be reached, or failed to answer, for a while.",
    Cause.REJECTED: "The storage account rejected the writes.",
    CONFIGURATION_UNREADABLE: (
        "The service cannot read this export's stored configuration: nothing is exported or kept for "
        "it until it is fixed. This is a problem on the service's side, not with the storage account."
    ),
}

HINTS: dict[str, tuple[str, ...]] = {
    Cause.AUTHENTICATION: (
        "Check that the storage account key that was provided is correct: if it was regenerated, "
        "edit the export's destination with the current key.",
        "Then resume the export: every signal kept in the backlog is written.",
    ),
    Cause.NOT_FOUND: (
        "Check that the storage account that was provided still exists, and that its filesystem "
        "or container was not deleted.",
        "Recreate it (or edit the export's destination), then resume the export.",
    ),
    Cause.THROTTLED: (
        "Check whether the storage account's transactions-per-second limit is reached: open the "
        "Metrics pane of the storage account in the Azure Portal.",
        "The export resumes by itself when the account accepts writes again.",
    ),
    Cause.TRANSIENT: (
        "Check that the storage account still exists and accepts connections (firewall, private endpoints).",
        "The export resumes by itself when the account answers again.",
    ),
    Cause.REJECTED: (
        "Check the storage account's configuration: an ADLS Gen2 destination needs the "
        "hierarchical namespace enabled, and the account must allow the service's writes.",
        "Then resume the export.",
    ),
    CONFIGURATION_UNREADABLE: (
        "Operators: the row's key was most likely sealed under a service key that was removed from "
        "KEY_ENCRYPTION_KEY; put that key back (after the newest) and the export is read again within "
        "a minute.",
        "Customers: set the export again (PUT with its destination and key), or delete it.",
    ),
}


@dataclass(frozen=True)
class HealthPolicy:
    """Thresholds of the health check; each is a setting (shared.settings, the README)."""

    window_ticks: int = 5  # HEALTH_WINDOW_TICKS: how many recent checks the success rate covers
    fatal_min_failures: int = 1  # HEALTH_FATAL_MIN_FAILURES: failed writes, none succeeding, in one check
    persistent_ticks: int = 3  # HEALTH_PERSISTENT_TICKS: consecutive checks with throttling/transient
    min_success_rate: float = 0.5  # HEALTH_MIN_SUCCESS_RATE: below it, persistent failures postpone
    retention: timedelta = timedelta(days=7)  # BACKLOG_RETENTION_DAYS
    probe_every: timedelta = timedelta(minutes=1)  # HEALTH_PROBE_SECONDS


@dataclass(frozen=True)
class Tick:
    """What happened to an export's writes between two health checks (signals, by outcome)."""

    exported: int = 0
    writes_ok: int = 0
    failed: Mapping[str, int] = field(default_factory=dict)  # signals whose write failed, by cause
    writes_failed: int = 0

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def to_json(self) -> dict[str, Any]:
        return {"e": self.exported, "ok": self.writes_ok, "f": dict(self.failed), "wf": self.writes_failed}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Tick:
        """Read what `to_json` wrote; a cause this version does not know (written by another) is left
        out, as the ledger's counters leave it out."""
        failed = {k: int(v) for k, v in raw["f"].items() if k in _CAUSES}
        return cls(int(raw["e"]), int(raw["ok"]), failed, int(raw["wf"]))


def tick_between(before: Counters, after: Counters) -> Tick:
    """The tick from two snapshots of an export's running counters."""
    delta = after.since(before)
    return Tick(
        exported=delta.exported,
        writes_ok=delta.writes_ok,
        failed=dict(delta.failed),
        writes_failed=delta.writes_failed,
    )


@dataclass(frozen=True)
class Decision:
    """A state change, with the cause and the reason the customer reads."""

    status: ExportStatus
    cause: str
    reason: str


def judge(
    status: ExportStatus,
    ticks: Sequence[Tick],
    *,
    postponed_for: timedelta | None,
    policy: HealthPolicy,
) -> Decision | None:
    """The state an export should move to, if any, from its recent ticks (oldest first)."""
    if status is ExportStatus.POSTPONED:
        if postponed_for is not None and postponed_for >= policy.retention:
            days = policy.retention / timedelta(days=1)
            return Decision(
                ExportStatus.DISABLED,
                "",
                f"Postponed for {days:g} days without being fixed: the backlog no longer keeps new signals.",
            )
        return None
    if status is not ExportStatus.ACTIVE or not ticks:
        return None
    last = ticks[-1]
    fatal = {cause: last.failed.get(cause.value, 0) for cause in FATAL}
    worst = max(fatal, key=lambda cause: fatal[cause])
    if fatal[worst] and last.writes_failed >= policy.fatal_min_failures and last.writes_ok == 0:
        return Decision(ExportStatus.POSTPONED, worst.value, EXPLANATIONS[worst])
    recent = list(ticks)[-policy.persistent_ticks :]
    if len(recent) < policy.persistent_ticks or not all(t.failures for t in recent):
        return None
    window = list(ticks)[-policy.window_ticks :]
    exported = sum(t.exported for t in window)
    failed = sum(t.failures for t in window)
    rate = exported / (exported + failed) if exported + failed else 1.0
    if rate >= policy.min_success_rate:
        return None
    by_cause: dict[str, int] = {}
    for t in window:
        for cause, n in t.failed.items():
            by_cause[cause] = by_cause.get(cause, 0) + n
    cause = max(by_cause, key=lambda c: by_cause[c])
    return Decision(
        ExportStatus.POSTPONED,
        cause,
        f"{EXPLANATIONS[Cause(cause)]} Only {rate:.0%} of signals were written over the last "
        f"{len(window)} checks.",
    )


def success_rate(ticks: Sequence[Tick]) -> float | None:
    """Signals written over signals attempted in the window; None when nothing was attempted."""
    exported = sum(t.exported for t in ticks)
    failed = sum(t.failures for t in ticks)
    return exported / (exported + failed) if exported + failed else None


def hints(cause: str) -> list[str]:
    """The troubleshooting hints that fit a cause (none when healthy)."""
    return list(HINTS.get(cause, ()))


def explanation(cause: str) -> str:
    return EXPLANATIONS.get(cause, "")
