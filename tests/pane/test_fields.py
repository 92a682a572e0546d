"""The pane's pure modules (the form's field table, the states' wording) under Node.js's test runner."""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_the_form_table_and_the_wording_pass_their_javascript_tests() -> None:
    """tests/pane/js/*.test.mjs: definitions from the form, the form from an export, errors placed by target."""
    tests = sorted(str(p) for p in (HERE / "js").glob("*.test.mjs"))
    assert tests
    run = subprocess.run(["node", "--test", *tests], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout
