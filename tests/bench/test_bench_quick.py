"""The benchmark harness cannot rot: its quick mode runs here and its output has every figure.

Only the output's shape is checked (every figure present, a positive number; the JSON, the PNG and the
table written), never a time or a ratio: benchmarks are not tests.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXPORTS = (1, 10, 100)
SIZES = ("200B", "1K", "16K")
CPU = [
    f"cpu.e{exports}.s{size}.{name}"
    for exports in EXPORTS
    for size in SIZES
    for name in ("exporter", "limit", "usual", "vs_limit", "vs_usual")
]
LOCATION = [
    f"location.e10.s{size}.{case}.{name}"
    for size in SIZES
    for case in ("same_option", "own_options", "new_clients")
    for name in ("without", "with", "ratio")
]
OTHERS = [
    "requests.data_per_file",
    "requests.data_per_file_first",
    "requests.bookkeeping_per_data",
    "requests.bookkeeping_per_data_first",
    "requests.files_per_batch",
    "requests.data_per_batch",
    "requests.table_per_batch",
    "e2e.steady_rate",
    "e2e.latency_p50",
    "e2e.latency_p99",
    "e2e.export_call_p50",
    "e2e.export_call_p99",
    "e2e.decode_call_p50",
    "e2e.verified",
    "e2e.saturated_local",
    "e2e.saturated_cpu",
    "replay.drain_rate",
    "replay.live_rate",
    "replay.drain_vs_live",
    "replay.backlog_rate",
    "replay.resume_seconds",
    "cold.import_app",
    "cold.import_packages",
    "cold.import_overhead",
    "cold.first_invocation",
    "cold.warm_invocation",
    "memory.batch_bytes",
    "memory.traced_peak",
    "memory.rss_peak",
    "memory.traced_per_batch",
    "memory.rss_per_batch",
]
SECTIONS = {
    "cpu",
    "location",
    "requests",
    "end_to_end",
    "replay",
    "cold_start",
    "memory",
}  # scale: test_bench_scale


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", ",".join(sorted(SECTIONS)), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_the_quick_mode_reports_every_figure_as_a_positive_number(quick_run: Path) -> None:
    """Every section and figure is in results.json, a positive number with a unit and a label."""
    results = json.loads((quick_run / "results.json").read_text())
    assert set(results["sections"]) == SECTIONS
    assert results["meta"]["mode"] == "quick"
    figures = results["figures"]
    missing = [key for key in CPU + LOCATION + OTHERS if key not in figures]
    assert not missing, f"figures missing from results.json: {missing}"
    for key in CPU + LOCATION + OTHERS:
        value = figures[key]["value"]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (key, value)
        assert figures[key]["unit"] and figures[key]["label"], key
    for key, figure in figures.items():
        if "reference" in figure and figure["reference"].startswith(
            ("cpu.", "location.", "e2e.", "replay.", "cold.")
        ):
            assert figure["reference"] in figures, f"{key} refers to a figure that is not there"
    location_goals = {
        key for key, figure in figures.items() if key.startswith("location.") and "goal" in figure
    }
    assert location_goals == {f"location.e10.s{size}.same_option.ratio" for size in SIZES}


def test_the_quick_mode_draws_the_plot_and_writes_the_table(quick_run: Path) -> None:
    """The PNG is a real plot and the table has every section's title."""
    png = (quick_run / "throughput.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    table = (quick_run / "table.txt").read_text()
    for title in (
        "Export path CPU throughput",
        "Storage requests per batch",
        "End to end",
        "Replay",
        "Cold start",
        "Memory",
        "Location enrichment",
    ):
        assert title in table
