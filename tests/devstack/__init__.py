"""Tests of the local tooling: the local host, its sources and triggers, the producer, the walkthrough."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def devstack(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m devstack ...` as scripts/run runs it, with the settings of this test only."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobsStorage", "EventHubConnection"))
    }
    base.update({"COLUMNS": "200", "NO_COLOR": "1"})
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
