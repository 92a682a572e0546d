"""How health is judged (shared.health.rules): pure, from ticks of counted outcomes to a state change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.counters import Counters
from shared.health.rules import (
    CONFIGURATION_UNREADABLE,
    FATAL,
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

POLICY = HealthPolicy()  # 5-tick window, 1 failed write, 3 ticks in a row, 50 %, 7 days
ACTIVE, POSTPONED, DISABLED = ExportStatus.ACTIVE, ExportStatus.POSTPONED, ExportStatus.DISABLED
RETRYABLE = [cause for cause in Cause if cause.retryable]


def failing(cause: Cause, signals: int = 10, *, exported: int = 0, writes_ok: int = 0) -> Tick:
    """A tick in which `signals` signals failed for one cause, over as many failed writes."""
    return Tick(exported=exported, writes_ok=writes_ok, failed={cause.value: signals}, writes_failed=signals)


def healthy(exported: int = 10) -> Tick:
    return Tick(exported=exported, writes_ok=exported)


def active(*ticks: Tick, policy: HealthPolicy = POLICY) -> str | None:
    """The cause an active export is postponed for, or None when it stays active."""
    decision = judge(ACTIVE, ticks, postponed_for=None, policy=policy)
    if decision is None:
        return None
    assert decision.status is POSTPONED
    return decision.cause


@pytest.mark.parametrize("cause", FATAL)
def test_a_fatal_cause_postpones_at_once_when_no_write_succeeded(cause: Cause) -> None:
    """One check in which the key was refused (or the account is gone, or writes were rejected) and
    nothing was written is enough: waiting would only fill the backlog."""
    decision = judge(ACTIVE, [healthy(), failing(cause, 1)], postponed_for=None, policy=POLICY)
    assert decision is not None and decision.status is POSTPONED and decision.cause == cause.value
    assert decision.reason == explanation(cause.value)


@pytest.mark.parametrize("cause", FATAL)
def test_a_fatal_cause_does_not_postpone_while_some_writes_succeed(cause: Cause) -> None:
    """A fatal code among successful writes (one file of many) is not the account refusing: the
    export stays active at once."""
    assert active(failing(cause, 3, exported=50, writes_ok=5)) is None


def test_a_fatal_cause_waits_for_the_configured_number_of_failed_writes() -> None:
    """HEALTH_FATAL_MIN_FAILURES: fewer failed writes in the check do not postpone, that many do."""
    policy = HealthPolicy(fatal_min_failures=3)
    assert active(failing(Cause.AUTHENTICATION, 2), policy=policy) is None
    assert active(failing(Cause.AUTHENTICATION, 3), policy=policy) == Cause.AUTHENTICATION.value


def test_the_fatal_cause_named_is_the_one_with_the_most_failed_signals() -> None:
    """Two fatal causes in one check: the customer reads the one that failed the most signals."""
    tick = Tick(
        failed={Cause.AUTHENTICATION.value: 2, Cause.NOT_FOUND.value: 7, Cause.THROTTLED.value: 40},
        writes_failed=9,
    )
    assert active(tick) == Cause.NOT_FOUND.value


@pytest.mark.parametrize("cause", RETRYABLE)
def test_throttling_or_transient_failures_postpone_only_after_enough_checks_in_a_row(cause: Cause) -> None:
    """HEALTH_PERSISTENT_TICKS: two failing checks are a passing storm, the third in a row postpones."""
    assert active(failing(cause), failing(cause)) is None
    assert active(failing(cause), failing(cause), failing(cause)) == cause.value


@pytest.mark.parametrize("cause", RETRYABLE)
def test_a_clean_check_in_between_restarts_the_count(cause: Cause) -> None:
    """Failures in three checks, but not in a row: the export stays active."""
    assert active(failing(cause), failing(cause), healthy(), failing(cause), failing(cause)) is None


@pytest.mark.parametrize("cause", RETRYABLE)
def test_persistent_failures_do_not_postpone_while_most_signals_are_written(cause: Cause) -> None:
    """Failing checks in a row with a success rate at or above HEALTH_MIN_SUCCESS_RATE over the window:
    the account is slow, not gone."""
    half = failing(cause, 10, exported=10, writes_ok=1)  # 50 %: not below the rate
    assert active(half, half, half) is None
    worse = failing(cause, 11, exported=10, writes_ok=1)  # 10 of 21: below
    decision = judge(ACTIVE, [worse, worse, worse], postponed_for=None, policy=POLICY)
    assert decision is not None and decision.cause == cause.value
    assert "48%" in decision.reason and "3 checks" in decision.reason


def test_the_success_rate_is_taken_over_the_window_not_only_the_failing_checks() -> None:
    """HEALTH_WINDOW_TICKS: healthy checks before the failing ones in the window keep the rate up;
    the same failing checks with the window narrowed to them postpone."""
    ticks = [healthy(100), healthy(100), *[failing(Cause.THROTTLED, 50, exported=10, writes_ok=1)] * 3]
    assert active(*ticks) is None  # (200 + 30) of (200 + 30 + 150)
    assert active(*ticks, policy=HealthPolicy(window_ticks=3)) == Cause.THROTTLED.value


def test_persistent_failures_name_the_cause_that_failed_the_most_signals_over_the_window() -> None:
    """Throttling and transient failures mixed: the one with more failed signals in the window."""
    ticks = [
        failing(Cause.TRANSIENT, 30),
        Tick(failed={Cause.THROTTLED.value: 20, Cause.TRANSIENT.value: 5}, writes_failed=2),
        failing(Cause.THROTTLED, 20),
    ]
    assert active(*ticks) == Cause.THROTTLED.value  # 40 throttled against 35 transient


def test_a_postponed_export_is_disabled_exactly_at_the_retention() -> None:
    """BACKLOG_RETENTION_DAYS: a second before the retention it stays postponed; at it, disabled."""
    retention = POLICY.retention
    assert judge(POSTPONED, [], postponed_for=retention - timedelta(seconds=1), policy=POLICY) is None
    decision = judge(POSTPONED, [], postponed_for=retention, policy=POLICY)
    assert decision is not None and decision.status is DISABLED and "7 days" in decision.reason
    short = HealthPolicy(retention=timedelta(days=2))
    decision = judge(POSTPONED, [], postponed_for=timedelta(days=2), policy=short)
    assert decision is not None and decision.status is DISABLED and "2 days" in decision.reason


def test_a_postponed_export_whose_postponement_time_is_unknown_stays_postponed() -> None:
    """Without the time it was postponed at, nothing is dropped on a guess."""
    assert judge(POSTPONED, [failing(Cause.AUTHENTICATION)], postponed_for=None, policy=POLICY) is None


def test_no_checks_or_a_disabled_export_change_nothing() -> None:
    """An active export with no ticks yet, and a disabled export whatever its ticks, stay as they are."""
    assert judge(ACTIVE, [], postponed_for=None, policy=POLICY) is None
    ticks = [failing(Cause.AUTHENTICATION)] * 5
    assert judge(DISABLED, ticks, postponed_for=timedelta(days=30), policy=POLICY) is None


def test_a_tick_is_what_the_running_counters_moved_between_two_checks() -> None:
    """tick_between subtracts the earlier snapshot: signals written, writes and failures by cause."""
    before = Counters(exported=10, writes_ok=2, failed={Cause.THROTTLED.value: 3}, writes_failed=1)
    after = Counters(
        exported=15,
        writes_ok=3,
        failed={Cause.THROTTLED.value: 3, Cause.NOT_FOUND.value: 4},
        writes_failed=2,
        backlogged=4,
    )
    assert tick_between(before, after) == Tick(
        exported=5, writes_ok=1, failed={Cause.NOT_FOUND.value: 4}, writes_failed=1
    )
    assert tick_between(after, after) == Tick()


def test_the_success_rate_is_written_over_attempted_and_unknown_when_nothing_was_attempted() -> None:
    """success_rate: signals written over signals written or failed, all causes; None for no signal."""
    assert success_rate([]) is None
    assert success_rate([Tick(writes_ok=3), Tick()]) is None
    ticks = [healthy(30), Tick(failed={Cause.THROTTLED.value: 5, Cause.TRANSIENT.value: 5}, writes_failed=2)]
    assert success_rate(ticks) == 0.75


@pytest.mark.parametrize("cause", [*(cause.value for cause in Cause), CONFIGURATION_UNREADABLE])
def test_every_cause_has_an_explanation_and_hints_for_the_customer(cause: str) -> None:
    """A customer at 3 a.m. reads what happened and what to do, whatever the cause."""
    assert explanation(cause).endswith(".")
    assert hints(cause) and all(hint.endswith(".") for hint in hints(cause))


def test_a_healthy_export_has_no_explanation_or_hints() -> None:
    """No cause: nothing to explain and nothing to do."""
    assert explanation("") == "" and hints("") == []


def test_a_tick_survives_its_stored_form() -> None:
    """Tick.to_json / from_json: the health record keeps its ticks as JSON."""
    tick = Tick(exported=4, writes_ok=2, failed={Cause.TRANSIENT.value: 3}, writes_failed=1)
    assert Tick.from_json(tick.to_json()) == tick


causes = st.sampled_from([cause.value for cause in Cause])
ticks = st.builds(
    Tick,
    exported=st.integers(0, 100),
    writes_ok=st.integers(0, 20),
    failed=st.dictionaries(causes, st.integers(1, 100), max_size=3),
    writes_failed=st.integers(0, 20),
)
failing_ticks = ticks.filter(lambda tick: tick.failures > 0)
policies = st.builds(
    HealthPolicy,
    window_ticks=st.integers(1, 8),
    fatal_min_failures=st.integers(1, 5),
    persistent_ticks=st.integers(1, 8),
    min_success_rate=st.floats(0.0, 1.0),
    retention=st.timedeltas(timedelta(hours=1), timedelta(days=30)),
)
statuses = st.sampled_from(list(ExportStatus))
durations = st.none() | st.timedeltas(timedelta(0), timedelta(days=60))


@given(
    statuses,
    st.lists(failing_ticks | ticks, max_size=10),
    ticks.map(lambda t: Tick(t.exported, t.writes_ok)),
    durations,
    policies,
)
def test_an_export_whose_last_check_saw_no_failure_is_never_postponed(
    status: ExportStatus,
    earlier: list[Tick],
    last: Tick,
    postponed_for: timedelta | None,
    policy: HealthPolicy,
) -> None:
    """Whatever came before, a check in which every write succeeded (or none was tried) postpones nobody."""
    decision = judge(status, [*earlier, last], postponed_for=postponed_for, policy=policy)
    assert decision is None or decision.status is not POSTPONED


@given(statuses, st.lists(ticks, max_size=10), durations, policies)
def test_a_decision_always_changes_the_state_and_says_why(
    status: ExportStatus, history: list[Tick], postponed_for: timedelta | None, policy: HealthPolicy
) -> None:
    """judge never 'moves' an export to the state it is in; active only goes to postponed (for a cause
    seen in the ticks), postponed only to disabled, disabled nowhere; every decision has a reason."""
    decision = judge(status, history, postponed_for=postponed_for, policy=policy)
    if decision is None:
        return
    assert decision.status is not status and decision.reason
    if status is ACTIVE:
        assert decision.status is POSTPONED
        assert any(decision.cause in tick.failed for tick in history[-policy.window_ticks :])
    else:
        assert (status, decision.status) == (POSTPONED, DISABLED)
        assert postponed_for is not None and postponed_for >= policy.retention


def test_a_tick_stored_with_a_cause_this_version_does_not_know_is_judged_without_it() -> None:
    """A health record written by a newer (or older) version may name a cause this one lacks: the
    tick is read without it, and the judgement of the export goes on (it used to raise in `judge`)."""
    raw = {"e": 0, "ok": 0, "f": {"quota-exceeded": 9, Cause.THROTTLED.value: 4}, "wf": 2}
    tick = Tick.from_json(raw)
    assert tick.failed == {Cause.THROTTLED.value: 4}
    decision = judge(ExportStatus.ACTIVE, [tick] * 5, postponed_for=None, policy=HealthPolicy())
    assert decision is not None and decision.cause == Cause.THROTTLED.value
