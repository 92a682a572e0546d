"""An export's running counters (shared.counters.Counters): sums over batches and partitions, kept as
JSON in the ledger and subtracted by the health check."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.counters import Counters
from shared.outcomes import Cause

SUMMED = ("exported", "exported_bytes", "backlogged", "dropped", "writes_ok", "writes_failed", "faults")

counts = st.integers(0, 10**12)
times = st.integers(0, 2_000_000_000)
causes = st.sampled_from([cause.value for cause in Cause])
codes = st.sampled_from(["ServerBusy", "AuthenticationFailed", "ConflictsPersist"])


@st.composite
def counters(draw: st.DrawFn) -> Counters:
    """Counters as the export path makes them: a failure's time and its error code come together
    (shared.pipeline.tally_failed), so an error code is never older than no failure at all."""
    value = draw(
        st.builds(
            Counters,
            **{name: counts for name in SUMMED},
            failed=st.dictionaries(causes, st.integers(1, 10**9), max_size=len(Cause)),
            last_success=times,
        )
    )
    if draw(st.booleans()):
        value.last_failure = draw(st.integers(1, 2_000_000_000))
        value.last_error = draw(codes)
    return value


@given(counters())
def test_counters_survive_their_stored_form(value: Counters) -> None:
    """from_json reads back exactly what to_json wrote (the ledger's `counters` property)."""
    assert Counters.from_json(value.to_json()) == value


def test_the_stored_form_holds_only_what_is_set() -> None:
    """Compact: a partition entry of an export with one write holds one or two names, not twelve."""
    assert Counters().to_json() == {}
    assert Counters(exported=3, failed={Cause.THROTTLED.value: 2}).to_json() == {
        "exported": 3,
        "failed": {"throttled": 2},
    }


def test_unknown_names_and_causes_in_the_stored_form_are_dropped() -> None:
    """What a newer or older version wrote is read as far as this one understands it."""
    raw = {
        "exported": 4,
        "failed": {"throttled": 2, "quota-exceeded": 7},
        "reticulated": 9,
    }
    assert Counters.from_json(raw) == Counters(exported=4, failed={"throttled": 2})


@given(counters(), counters(), counters())
def test_adding_counts_is_associative(a: Counters, b: Counters, c: Counters) -> None:
    """Batches summed per partition, then partitions per export, or in any grouping: the same totals."""
    assert (a + b) + c == a + (b + c)


@given(counters(), counters())
def test_adding_leaves_both_sides_unchanged(a: Counters, b: Counters) -> None:
    """`a + b` is a new count: the ledger's entry and the batch's update it was made from stay as they were."""
    before = (Counters.from_json(a.to_json()), Counters.from_json(b.to_json()))
    total = a + b
    assert (a, b) == before
    total.failed[Cause.TRANSIENT.value] = total.failed.get(Cause.TRANSIENT.value, 0) + 1
    total.exported += 1
    assert (a, b) == before  # nothing shared with the sum either


@given(counters(), counters())
def test_the_sum_adds_every_count_and_keeps_the_latest_times(a: Counters, b: Counters) -> None:
    """Field by field: counts add, failures add per cause, times are the later of the two."""
    total = a + b
    for name in SUMMED:
        assert getattr(total, name) == getattr(a, name) + getattr(b, name)
    assert total.failed == {
        cause: a.failed.get(cause, 0) + b.failed.get(cause, 0) for cause in {*a.failed, *b.failed}
    }
    assert total.last_success == max(a.last_success, b.last_success)
    assert total.last_failure == max(a.last_failure, b.last_failure)


def test_the_last_error_is_that_of_the_latest_failure() -> None:
    """The error the health view shows is the newest one, whichever side it came from."""
    older = Counters(writes_failed=1, last_failure=100, last_error="ServerBusy")
    newer = Counters(writes_failed=1, last_failure=200, last_error="AuthenticationFailed")
    assert (older + newer).last_error == "AuthenticationFailed"
    assert (newer + older).last_error == "AuthenticationFailed"
    assert (newer + Counters(writes_ok=1, last_success=300)).last_error == "AuthenticationFailed"


@given(counters(), counters())
def test_since_takes_back_what_add_added(earlier: Counters, change: Counters) -> None:
    """The health check's tick: the later snapshot since the earlier one is the change in between, for
    every count and every cause."""
    later = earlier + change
    delta = later.since(earlier)
    for name in SUMMED:
        assert getattr(delta, name) == getattr(change, name)
    assert delta.failed == change.failed
    assert later.since(later) == Counters(
        last_success=later.last_success, last_failure=later.last_failure, last_error=later.last_error
    )


def test_a_count_that_went_down_is_no_negative_change() -> None:
    """A partition's entry that was forgotten makes a later sum smaller: the tick sees no change, not
    negative signals."""
    earlier = Counters(exported=10, failed={Cause.THROTTLED.value: 5})
    later = Counters(exported=4, failed={Cause.THROTTLED.value: 2})
    assert later.since(earlier) == Counters()


@given(counters())
def test_counters_are_empty_exactly_when_nothing_was_counted(value: Counters) -> None:
    """An update with no count is not saved (the ledger skips it); one with any count is."""
    assert bool(value) == (any(getattr(value, name) for name in SUMMED) or bool(value.failed))
    assert not Counters() and Counters(faults=1) and Counters(failed={Cause.REJECTED.value: 1})
