"""The scores of the last mutation run (scripts/mutation), from the results mutmut keeps in mutants/.

Per module: mutants killed (a test failed; a timeout counts, the mutant looped), and the total,
including the mutants no selected test reaches (they count as surviving). Lists every mutant that
was not killed. Exits 1 when a module's score is under the goal, 2 when there are no results.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

GOAL = 0.9
KILLED = {1, 3}  # a test failed; pytest's internal error (the mutant broke an import)
TIMEOUT = {36, 24, -24, 152, 255}  # mutmut's CPU limit (SIGXCPU), or its timeout
NAMES = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]
    rows: list[tuple[str, int, int, int]] = []
    missed: list[tuple[str, str]] = []
    for module in config["only_mutate"]:
        meta = root / "mutants" / f"{module}.meta"
        if not meta.exists():
            print(f"{module}: no results (run scripts/mutation first)")
            return 2
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        outcome = Counter(
            "killed" if code in KILLED else "timeout" if code in TIMEOUT else NAMES.get(code, f"exit {code}")
            for code in codes.values()
        )
        rows.append((module, outcome["killed"], outcome["timeout"], len(codes)))
        missed += [
            (name, NAMES.get(code, f"exit {code}"))
            for name, code in codes.items()
            if code not in KILLED and code not in TIMEOUT
        ]
    print(f"{'module':28} {'killed':>7} {'timeout':>7} {'total':>6} {'score':>7}")
    below = False
    for module, killed, timeout, total in rows:
        score = (killed + timeout) / total if total else 1.0
        below |= score < GOAL
        print(f"{module:28} {killed:7} {timeout:7} {total:6} {score:7.1%}")
    killed, timeout, total = (sum(row[i] for row in rows) for i in (1, 2, 3))
    print(f"{'all':28} {killed:7} {timeout:7} {total:6} {(killed + timeout) / total:7.1%}")
    if missed:
        print(f"\nnot killed ({len(missed)}; `.venv/bin/mutmut show NAME` shows one):")
        for name, status in missed:
            print(f"  {status:12} {name}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
