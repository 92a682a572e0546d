"""The benchmark's scale section cannot rot: its quick form (1,000 and 10,000 exports) runs here.

Its output's shape is checked (every figure, a positive number; the goals with their verdicts), and the
counts the design promises, which do not depend on the machine: an idle minute costs the same table
requests at every size, and so does a project's first batch after its cache expired. Never a time.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SIZES = (1_000, 10_000)
PER_SIZE = [
    "seed_seconds",
    *(
        f"{kind}.{name}"
        for kind in ("idle", "active")
        for name in (
            "check_wall",
            "check_cpu",
            "check_max_wall",
            "table",
            "transactions_per_export_month",
            "memory",
        )
    ),
    "active.table_per_active_export",
    "first_batch_wall",
    "first_batch_cpu",
    "first_batch_table",
    "first_batch_lookup",
]
GOALS = ["scale.goal.check_share", "scale.goal.table_per_active", "scale.goal.first_batch_ratio"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "scale", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "8. Scale" in (out / "table.txt").read_text()
    loaded: dict[str, Any] = json.loads((out / "results.json").read_text())
    return loaded


def test_the_quick_scale_run_reports_every_figure_and_each_goal_with_its_verdict(
    results: dict[str, Any],
) -> None:
    """Each size's figures are there, positive; each goal of the issue says what it is and whether it
    was met."""
    assert set(results["sections"]) == {"scale"} and results["meta"]["mode"] == "quick"
    figures = results["figures"]
    wanted = [f"scale.n{size}.{name}" for size in SIZES for name in PER_SIZE] + GOALS
    assert [key for key in wanted if key not in figures] == []
    for key in wanted:
        value = figures[key]["value"]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (key, value)
    for key in GOALS:
        assert figures[key]["goal"] and isinstance(figures[key]["met"], bool), key
    assert figures["scale.goal.first_batch_ratio"]["reference"] in figures


def test_idle_exports_and_a_first_batch_cost_the_same_table_requests_at_every_size(
    results: dict[str, Any],
) -> None:
    """Ten times the idle exports: the same table requests a minute, no export judged, and the same
    requests for a project's first batch after its cache expired."""
    rows = {row["exports"]: row for row in results["sections"]["scale"]["rows"]}
    assert set(rows) == set(SIZES)
    idle = {size: {minute["table"] for minute in rows[size]["idle"]} for size in SIZES}
    assert idle[1_000] == idle[10_000] and len(idle[1_000]) == 1
    assert all(minute["judged"] == 0 for size in SIZES for minute in rows[size]["idle"])
    first = {size: {batch["table"] for batch in rows[size]["first_batch"]} for size in SIZES}
    assert first[1_000] == first[10_000]
    assert all(
        minute["judged"] == rows[size]["active_exports"] for size in SIZES for minute in rows[size]["active"]
    )
