"""The README's first command: the walkthrough, in --short mode as CI runs it, twice in a row on one
data folder, each ending by itself with every signal proven in place exactly once."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from devstack.walkthrough import SentSignal, verify
from tests.devstack import devstack

pytestmark = pytest.mark.integration


def test_the_short_walkthrough_completes_twice_in_a_row(tmp_path: Path) -> None:
    """Exit 0 both times, within a minute each; the final table has every row checked; the
    KEY_ENCRYPTION_KEY kept in the data folder is never printed."""
    outputs = []
    for _ in range(2):
        started = time.monotonic()
        result = devstack(
            "walkthrough",
            "--short",
            "--port",
            "0",
            "--storage-port",
            "0",
            "--data-dir",
            str(tmp_path),
            timeout=120,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert time.monotonic() - started < 60
        outputs.append(result.stdout)
    key = (tmp_path / "key-encryption-key").read_text().strip()
    for output in outputs:
        assert "is in the right destination exactly once" in output
        assert "postponed" in output and "authentication-failed" in output
        assert "Backlog drained" in output and "Explore further" in output
        table = output[output.index("Every signal, read back") :]
        rows = [line for line in table.splitlines() if re.match(r"^ ?(ADLS|Blob|Entra|none) ", line)]
        assert len(rows) >= 7 and all(line.rstrip().endswith("✓") for line in rows), table
        assert any(line.lstrip().startswith("Entra ") for line in rows), table
        assert "authentication entra" in output and "Storage Blob Data Contributor" in output
        assert key not in output
    projects = {re.search(r"project (shop-[0-9a-f]{6})", out).group(1) for out in outputs}  # type: ignore[union-attr]
    assert len(projects) == 2  # fresh project ids each run


def test_the_comparison_catches_missing_duplicated_stray_and_misplaced_signals() -> None:
    """The final table is not a formality: each kind of mistake turns a row red."""
    sent = [SentSignal("a1", "p", "click"), SentSignal("a2", "p", "click"), SentSignal("b1", "q", "click")]
    every = {"out/lake_0.jsonl": [b'{"id":"a1","name":"click"}', b'{"id":"a2","name":"click"}']}

    def check(files: dict[str, list[bytes]]) -> list[tuple[str, bool]]:
        report = verify(
            sent, {"ADLS": (files, lambda s: s.project == "p", lambda path, _: path.startswith("out/"))}, "q"
        )
        return [(row.name, row.ok) for row in report.rows] + [("other", report.other_project_found == 0)]

    assert all(ok for _, ok in check(every))
    assert not all(ok for _, ok in check({"out/lake_0.jsonl": [b'{"id":"a1","name":"click"}']}))
    assert not all(ok for _, ok in check({"out/x": every["out/lake_0.jsonl"] * 2}))
    assert not all(
        ok for _, ok in check({"out/x": [*every["out/lake_0.jsonl"], b'{"id":"b1","name":"click"}']})
    )
    assert not all(ok for _, ok in check({"elsewhere/x": every["out/lake_0.jsonl"]}))
