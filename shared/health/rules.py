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
from shared.model import AuthMethod, ExportStatus
from shared.outcomes import Cause

FATAL = (
    Cause.AUTHENTICATION,
    Cause.NOT_FOUND,
    Cause.REJECTED,
    Cause.PERMISSION_MISSING,
    Cause.SHARED_KEY_DISABLED,
    Cause.CONSENT_MISSING,
    Cause.CREDENTIAL_EXPIRED,
)
_CAUSES = frozenset(cause.value for cause in Cause)
CONFIGURATION_UNREADABLE = "configuration-unreadable"  # the service cannot read the export's row

EXPLANATIONS: dict[str, str] = {
    Cause.AUTHENTICATION: "The storage account refused the key: it was probably regenerated.",
    Cause.NOT_FOUND: "The storage account, filesystem or container no longer exists.",
    Cause.THROTTLED: "The storage account is throttling writes: its request rate limit is reached.",
    Cause.TRANSIENT: "The storage account could not be reached, or failed to answer, for a while.",
    Cause.REJECTED: "The storage account rejected the writes.",
    Cause.PERMISSION_MISSING: "The storage account refused the writes: a permission they need is missing.",
    Cause.SHARED_KEY_DISABLED: (
        "Shared-key access is switched off on the storage account: it refuses its access keys, and SAS "
        "signed with them."
    ),
    Cause.CONSENT_MISSING: "The service's application has no consent in the storage account's tenant.",
    Cause.CREDENTIAL_EXPIRED: "The SAS expired: the storage account no longer takes it.",
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
    Cause.PERMISSION_MISSING: (
        "Give the export's credential the permissions it needs on the filesystem or container: the role "
        "Storage Blob Data Contributor (Microsoft Entra ID), or a SAS with every permission the export uses.",
        "Then resume the export.",
    ),
    Cause.SHARED_KEY_DISABLED: (
        "Switch the export to Microsoft Entra ID (destination.entra with your tenant id, after the role "
        "assignment the onboarding operation gives), or give it a user delegation SAS (destination.sas).",
    ),
    Cause.CONSENT_MISSING: (
        "An administrator of the tenant consents to the service's application once (the onboarding "
        "operation gives the link), then assigns it the role Storage Blob Data Contributor.",
        "Then resume the export.",
    ),
    Cause.CREDENTIAL_EXPIRED: (
        "Create a new SAS that expires later and edit the export's destination with it (destination.sas): "
        "the export resumes and the signals kept in the backlog are written.",
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
    credential_warning: timedelta = timedelta(days=7)  # CREDENTIAL_WARNING_DAYS: warn before a SAS expires


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


@dataclass(frozen=True)
class Access:
    """How a destination authenticates, in the words its explanations and hints need: which method, what
    it covers, and for Microsoft Entra ID who needs the role and where to consent (shared.onboarding
    builds it from the destination and the service's identity). Holds no secret."""

    method: AuthMethod
    scope: str  # e.g. "the filesystem `exports` of the storage account `contoso`"
    tenant: str = ""  # Entra ID: the customer's tenant id
    principal: str = ""  # Entra ID: who needs the role, e.g. "the application signals-export (client id ...)"
    role: str = ""  # Entra ID: the built-in role to assign
    role_command: str = ""  # Entra ID: the exact `az role assignment create` command
    consent_url: str = ""  # Entra ID in a customer's tenant: the admin consent link
    expires: str = ""  # SAS: when it expires (ISO 8601)
    permissions: str = ""  # SAS: the permissions (sp) that grant everything the export uses


def hints(cause: str, access: Access | None = None) -> list[str]:
    """The troubleshooting hints that fit a cause (none when healthy), in the words of the destination's
    authentication method when it is known."""
    worded = _method_hints(cause, access) if access is not None else None
    return list(HINTS.get(cause, ()) if worded is None else worded)


def explanation(cause: str, access: Access | None = None) -> str:
    worded = _method_explanation(cause, access) if access is not None else None
    return EXPLANATIONS.get(cause, "") if worded is None else worded


def _method_explanation(cause: str, access: Access) -> str | None:
    method = access.method
    if cause == Cause.AUTHENTICATION and method is AuthMethod.SAS:
        return (
            "The storage account refused the SAS: the key it was signed with was regenerated, its user "
            "delegation key was revoked, or it is not for this filesystem or container."
        )
    if cause == Cause.AUTHENTICATION and method is AuthMethod.ENTRA:
        return (
            f"The service could not sign in to the storage account with Microsoft Entra ID in the tenant "
            f"{access.tenant}: the account may belong to another tenant."
        )
    if cause == Cause.PERMISSION_MISSING and method is AuthMethod.ENTRA:
        return f"{_capital(access.principal)} has no role that lets it write to {access.scope}."
    if cause == Cause.PERMISSION_MISSING and method is AuthMethod.SAS:
        return (
            f"The SAS does not grant a permission the export needs on {access.scope} (or, for a user "
            "delegation SAS, the user who signed it lost their role)."
        )
    if cause == Cause.CONSENT_MISSING:
        return (
            f"The service's application has no consent in the tenant {access.tenant}: it cannot sign in "
            "there."
        )
    if cause == Cause.CREDENTIAL_EXPIRED and access.expires:
        return f"The SAS expired at {access.expires}: the storage account no longer takes it."
    return None


def _method_hints(cause: str, access: Access) -> list[str] | None:
    method = access.method
    resume = "Then resume the export: every signal kept in the backlog is written."
    new_sas = (
        f"Create a new SAS for {access.scope} with the permissions sp={access.permissions}, and edit the "
        "export's destination with it (destination.sas): the export resumes and its backlog is written."
    )
    if method is AuthMethod.ENTRA and cause in (Cause.PERMISSION_MISSING, Cause.CONSENT_MISSING):
        assign = (
            f"Assign the role {access.role} to {access.principal} on {access.scope}: {access.role_command}"
        )
        advice = [assign, "A new role assignment takes effect within about 10 minutes.", resume]
        if cause == Cause.CONSENT_MISSING:
            consent = f"An administrator of the tenant {access.tenant} consents to the application once: "
            advice.insert(0, consent + access.consent_url)
        return advice
    if method is AuthMethod.ENTRA and cause == Cause.AUTHENTICATION:
        return [
            f"Check that the storage account belongs to the tenant {access.tenant} "
            "(destination.entra.tenantId): the service signs in to that tenant only, and the account takes "
            "tokens of its own tenant only.",
            "If it does, the service's own sign-in failed: tell the service's operator.",
            resume,
        ]
    if method is AuthMethod.SAS and cause in (Cause.PERMISSION_MISSING, Cause.AUTHENTICATION):
        return [new_sas, "A user delegation SAS also needs its signer to keep Storage Blob Data Contributor."]
    if cause == Cause.CREDENTIAL_EXPIRED:
        return [
            new_sas,
            "A user delegation SAS lasts 7 days at most: for longer, switch the export to "
            "Microsoft Entra ID (destination.entra).",
        ]
    if cause == Cause.SHARED_KEY_DISABLED:
        return [
            "Switch the export to Microsoft Entra ID: ask the onboarding operation (POST "
            ".../onboarding) for the consent link and the role assignment for your tenant, make them, then "
            'edit the export\'s destination with {"entra": {"tenantId": "<your tenant id>"}}.',
            "Or give it a user delegation SAS (destination.sas): it works with shared-key access off.",
        ]
    return None


def credential_warning(access: Access) -> str:
    """What the customer reads before a SAS expires."""
    return (
        f"The export's SAS expires at {access.expires}: before then, create a new SAS for {access.scope} "
        f"(sp={access.permissions}) and edit the export's destination with it (destination.sas), or the "
        "export is postponed when it expires and its signals wait in the backlog."
    )


def credential_expired(
    status: ExportStatus, expires_at: float | None, now: float, *, access: Access | None = None
) -> Decision | None:
    """Postpone an active export whose SAS expired: its writes can only fail from now on."""
    if status is not ExportStatus.ACTIVE or expires_at is None or now < expires_at:
        return None
    return Decision(
        ExportStatus.POSTPONED, Cause.CREDENTIAL_EXPIRED.value, explanation(Cause.CREDENTIAL_EXPIRED, access)
    )


def warn_before(expires_at: float | None, now: float, *, ahead: timedelta, warned: float) -> bool:
    """Whether to warn now that a SAS expires soon: within `ahead` of its expiry, not expired yet, and
    not warned of that expiry already (`warned` is the expiry last warned of)."""
    if expires_at is None or warned == expires_at:
        return False
    return expires_at - ahead.total_seconds() <= now < expires_at


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
