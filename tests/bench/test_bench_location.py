"""The location benchmark cannot rot: its quick mode gives every figure (never a time or a ratio checked)."""

from __future__ import annotations

import math

from bench import location
from bench.common import Scale


def test_the_location_benchmark_gives_each_case_and_size_a_ratio() -> None:
    """Quick mode: a positive ratio for every case and size, the goal stated on the same-option case."""
    lines: list[str] = []
    result = location.measure(Scale.small(), lines.append)
    figures = {figure["id"]: figure for figure in result["figures"]}
    expected = {
        f"location.e10.s{size}.{case}.ratio" for size in ("200B", "1K", "16K") for case in location.CASES
    }
    assert set(figures) == expected
    assert all(math.isfinite(f["value"]) and f["value"] > 0 for f in figures.values())
    assert {f["id"] for f in figures.values() if f.get("goal")} == {
        f"location.e10.s{size}.same_option.ratio" for size in ("200B", "1K", "16K")
    }
    assert len(lines) == len(expected)
