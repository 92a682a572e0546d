"""When an export is postponed or disabled (shared.health.rules.judge), from the write outcomes of its
recent health checks: at once for a failure only the customer can fix, after a few checks for one
that passes by itself, and only below the success rate the operator set."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.counters import Counters
from shared.health.rules import (
    CONFIGURATION_UNREADABLE,
    EXPLANATIONS,
    FATAL,
    HINTS,
    HealthPolicy,
    Tick,
    explanation,
    hints,
    judge,
    success_rate,
    tick_between,
)
from shared.model import ExportStatus
from shared.outcomes import Cause

POLICY = HealthPolicy()  # 5 checks' window, 1 failed write, 3 checks in a row, 50%, 7 days


def failing(
    cause: Cause, signals: int = 10, *, exported: int = 0, writes_ok: int = 0, writes: int = 1
) -> Tick:
    """A check during which writes failed for `cause`."""
    return Tick(exported=exported, writes_ok=writes_ok, failed={cause.value: signals}, writes_failed=writes)


def active(*ticks: Tick, policy: HealthPolicy = POLICY) -> tuple[ExportStatus, str] | None:
    decision = judge(ExportStatus.ACTIVE, ticks, postponed_for=None, policy=policy)
    return None if decision is None else (decision.status, decision.cause)


@pytest.mark.parametrize("cause", FATAL)
def test_a_failure_only_the_customer_can_fix_postpones_at_once(cause: Cause) -> None:
    """Authentication, not found and rejected writes, none succeeding, in one check: postponed for that cause."""
    decision = judge(
        ExportStatus.ACTIVE, [Tick(exported=50), failing(cause)], postponed_for=None, policy=POLICY
    )
    assert decision is not None
    assert (decision.status, decision.cause) == (ExportStatus.POSTPONED, cause.value)
    assert decision.reason == EXPLANATIONS[cause]


def test_rejected_writes_postpone_the_export() -> None:
    """A storage account that rejects every write (e.g. no hierarchical namespace) is the customer's to fix."""
    assert Cause.REJECTED in FATAL
    assert active(failing(Cause.REJECTED)) == (ExportStatus.POSTPONED, "rejected")


@pytest.mark.parametrize("cause", [Cause.THROTTLED, Cause.TRANSIENT])
def test_a_failure_that_passes_by_itself_does_not_postpone_at_once(cause: Cause) -> None:
    """One check of throttled or transient failures only: nothing changes yet."""
    assert active(failing(cause, writes=5)) is None
    assert active(failing(cause), failing(cause)) is None


def test_a_fatal_failure_beside_a_successful_write_does_not_postpone_at_once() -> None:
    """Some writes succeeded in the same check (one file's folder deleted, others fine): not at once."""
    assert active(failing(Cause.NOT_FOUND, writes_ok=1, exported=5)) is None


def test_the_fatal_minimum_counts_failed_writes() -> None:
    """HEALTH_FATAL_MIN_FAILURES: fewer failed writes than that in the check leave the export active."""
    policy = HealthPolicy(fatal_min_failures=3)
    assert active(failing(Cause.AUTHENTICATION, writes=2), policy=policy) is None
    assert active(failing(Cause.AUTHENTICATION, writes=3), policy=policy) == (
        ExportStatus.POSTPONED,
        "authentication-failed",
    )
    assert active(failing(Cause.AUTHENTICATION, writes=0)) is None


def test_the_fatal_cause_with_the_most_failed_signals_is_named() -> None:
    """Several fatal causes in one check: the customer reads the one that failed the most signals."""
    tick = Tick(
        failed={"authentication-failed": 2, "not-found": 9, "rejected": 4, "throttled": 50}, writes_failed=4
    )
    assert active(tick) == (ExportStatus.POSTPONED, "not-found")
    tick = Tick(failed={"rejected": 7, "not-found": 3}, writes_failed=2)
    assert active(tick) == (ExportStatus.POSTPONED, "rejected")


def test_only_the_last_check_can_postpone_at_once() -> None:
    """An authentication failure two checks ago, since fixed, is not held against the export."""
    assert active(failing(Cause.AUTHENTICATION), Tick(exported=10, writes_ok=1)) is None


def test_persistent_failures_below_the_success_rate_postpone() -> None:
    """Three checks in a row with throttled or transient failures, under 50% written: postponed for the main cause."""
    ticks = [
        failing(Cause.TRANSIENT, 10, exported=2, writes_ok=1),
        failing(Cause.THROTTLED, 30, exported=2, writes_ok=1),
        failing(Cause.THROTTLED, 30, exported=2, writes_ok=1),
    ]
    decision = judge(ExportStatus.ACTIVE, ticks, postponed_for=None, policy=POLICY)
    assert decision is not None
    assert (decision.status, decision.cause) == (ExportStatus.POSTPONED, "throttled")
    assert decision.reason.startswith(EXPLANATIONS[Cause.THROTTLED])
    assert "Only 8% of signals were written over the last 3 checks." in decision.reason


def test_a_success_rate_exactly_at_the_threshold_does_not_postpone() -> None:
    """HEALTH_MIN_SUCCESS_RATE is the lowest rate that keeps the export active: at 50% it stays active."""
    at = [failing(Cause.TRANSIENT, 10, exported=10, writes_ok=1)] * 3
    assert success_rate(at) == POLICY.min_success_rate
    assert active(*at) is None
    below = [failing(Cause.TRANSIENT, 11, exported=10, writes_ok=1)] * 3
    assert active(*below) == (ExportStatus.POSTPONED, "transient")
    assert active(
        *[failing(Cause.TRANSIENT, 10, exported=10, writes_ok=1)] * 3,
        policy=HealthPolicy(min_success_rate=0.51),
    ) == (
        ExportStatus.POSTPONED,
        "transient",
    )


def test_a_check_without_failures_breaks_the_run() -> None:
    """Failures must persist: one clean check among the last three, or fewer than three checks, keeps it active."""
    bad = failing(Cause.TRANSIENT, 100)
    assert active(bad, bad) is None
    assert active(bad, Tick(), bad) is None
    assert active(bad, bad, Tick(exported=1, writes_ok=1)) is None
    assert active(Tick(), bad, bad, bad) == (ExportStatus.POSTPONED, "transient")
    assert active(bad, bad, bad, policy=HealthPolicy(persistent_ticks=4)) is None
    assert active(bad, bad, bad, bad, policy=HealthPolicy(persistent_ticks=4)) == (
        ExportStatus.POSTPONED,
        "transient",
    )


def test_the_success_rate_covers_the_window_only() -> None:
    """HEALTH_WINDOW_TICKS: a good hour long ago does not save an export failing now, nor the reverse."""
    good = Tick(exported=1000, writes_ok=10)
    bad = failing(Cause.TRANSIENT, 10, exported=1)
    assert active(good, bad, bad, bad) is None  # 1003 of 1033 written within the window of 5
    assert active(good, bad, bad, bad, bad, bad) == (ExportStatus.POSTPONED, "transient")
    assert active(good, bad, bad, bad, policy=HealthPolicy(window_ticks=3)) == (
        ExportStatus.POSTPONED,
        "transient",
    )
    decision = judge(ExportStatus.ACTIVE, [good, bad, bad, bad, bad, bad], postponed_for=None, policy=POLICY)
    assert decision is not None and "over the last 5 checks" in decision.reason


def test_the_main_cause_of_persistent_failures_is_summed_over_the_window() -> None:
    """The cause named is the one that failed the most signals over the whole window, not in the last check."""
    ticks = [
        Tick(failed={"throttled": 50}, writes_failed=1),
        Tick(failed={"transient": 10, "throttled": 5}, writes_failed=1),
        Tick(failed={"transient": 20, "throttled": 1}, writes_failed=1),
    ]
    assert active(*ticks) == (ExportStatus.POSTPONED, "throttled")


def test_a_postponed_export_is_disabled_after_the_retention_period() -> None:
    """Postponed 7 days (BACKLOG_RETENTION_DAYS) without a fix: disabled, and the reason says for how long."""
    week = POLICY.retention
    assert judge(ExportStatus.POSTPONED, [], postponed_for=week - timedelta(seconds=1), policy=POLICY) is None
    assert judge(ExportStatus.POSTPONED, [], postponed_for=None, policy=POLICY) is None
    decision = judge(
        ExportStatus.POSTPONED, [failing(Cause.AUTHENTICATION)], postponed_for=week, policy=POLICY
    )
    assert decision is not None
    assert (decision.status, decision.cause) == (ExportStatus.DISABLED, "")
    assert decision.reason == (
        "Postponed for 7 days without being fixed: the backlog no longer keeps new signals."
    )
    short = HealthPolicy(retention=timedelta(hours=36))
    decision = judge(ExportStatus.POSTPONED, [], postponed_for=timedelta(days=2), policy=short)
    assert decision is not None and decision.reason.startswith("Postponed for 1.5 days")


def test_a_disabled_or_postponed_export_is_not_postponed_again() -> None:
    """Failures only move an active export; a disabled one stays as it is."""
    fatal = [failing(Cause.AUTHENTICATION)] * 3
    assert judge(ExportStatus.DISABLED, fatal, postponed_for=timedelta(days=30), policy=POLICY) is None
    assert judge(ExportStatus.POSTPONED, fatal, postponed_for=timedelta(days=1), policy=POLICY) is None
    assert judge(ExportStatus.ACTIVE, [], postponed_for=None, policy=POLICY) is None


def test_the_success_rate_is_signals_written_over_signals_attempted() -> None:
    """None when nothing was attempted; failures of every cause count against it."""
    assert success_rate([]) is None
    assert success_rate([Tick(), Tick()]) is None
    assert success_rate([Tick(exported=3), Tick(failed={"throttled": 1, "rejected": 4})]) == 3 / 8
    assert success_rate([Tick(exported=3)]) == 1.0


def test_a_tick_is_what_happened_between_two_snapshots_and_survives_storage() -> None:
    """tick_between takes the counters' difference; to_json and from_json give the same tick back."""
    before = Counters(exported=10, writes_ok=2, writes_failed=1, failed={"throttled": 4})
    after = Counters(exported=15, writes_ok=3, writes_failed=4, failed={"throttled": 6, "rejected": 2})
    tick = tick_between(before, after)
    assert tick == Tick(exported=5, writes_ok=1, failed={"throttled": 2, "rejected": 2}, writes_failed=3)
    assert tick.failures == 4
    assert Tick.from_json(tick.to_json()) == tick


def test_every_cause_has_an_explanation_and_hints_for_the_customer() -> None:
    """Each cause a customer can meet has an explanation and at least one hint; a healthy export has none."""
    for cause in [*Cause, CONFIGURATION_UNREADABLE]:
        assert explanation(cause) == EXPLANATIONS[cause] and explanation(cause)
        assert hints(cause) == list(HINTS[cause]) and hints(cause)
    assert explanation("") == "" and hints("") == []
    assert hints("authentication-failed") is not hints("authentication-failed"), (
        "each caller gets its own list"
    )
