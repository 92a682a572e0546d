"""Planted bugs (scripts/mutation --planted): plausible mistakes in what decides exactly once, health,
causes, the layout and who may do what, each with the test that must catch it.

mutmut's mutants are mechanical (an operator, a constant); these are the bugs an engineer would write,
among them the ones an outside check planted (issue 20) that the suite once let through. Each is made
in a copy of the repository, one at a time, and only its test is run: the bug is caught when that test
fails. Exits 1 when any bug survives, or a change no longer applies (the code moved: update the row).
Words given on the command line run only the bugs whose name holds one of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPIED = ["shared", "tests", "devstack", "function_app.py", "host.json", "pyproject.toml"]
LINKED = ["node_modules"]
PYTEST = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]


@dataclass(frozen=True)
class Bug:
    """One planted bug: `before` (found exactly once in `path`) becomes `after`; `test` must fail."""

    name: str
    path: str
    before: str
    after: str
    test: str


BUGS = [
    Bug(
        "a ledger save without its etag condition",
        "shared/ledger.py",
        '"etag": entry.etag,\n' + " " * 32 + '"match_condition": MatchConditions.IfNotModified,',
        '"etag": entry.etag,\n' + " " * 32 + '"match_condition": MatchConditions.Unconditionally,',
        "tests/unit/test_ledger_saves.py::test_two_owners_saving_at_once_keep_both_records_and_count_each_signal_once",
    ),
    Bug(
        "a redelivered batch counting its backlogged signals twice",
        "shared/ledger.py",
        "since = before.state.last_sequence if before is not None else -1",
        "since = before.state.last_sequence if before is not None and not change.backlog else -1",
        "tests/unit/test_ledger_saves.py::test_a_redelivered_batch_counts_its_backlogged_signals_once",
    ),
    Bug(
        "the hot path letting 1 MiB + 1 byte through",
        "shared/signals.py",
        "if len(body) <= MAX_SIGNAL_BYTES and event.project_id",
        "if len(body) <= MAX_SIGNAL_BYTES + 1 and event.project_id",
        "tests/unit/test_signals.py::test_the_batch_path_takes_the_same_size_limit",
    ),
    Bug(
        "the hot path taking a body with a raw line feed verbatim",
        "shared/signals.py",
        "and event.project_id and 10 not in body and 13 not in body:",
        "and event.project_id:",
        "tests/unit/test_signals.py::test_the_batch_path_puts_a_body_on_several_lines_on_one_line",
    ),
    Bug(
        "a success rate exactly at the threshold postponing",
        "shared/health/rules.py",
        "if rate >= policy.min_success_rate:",
        "if rate > policy.min_success_rate:",
        "tests/unit/test_health_judgement.py::test_a_success_rate_exactly_at_the_threshold_does_not_postpone",
    ),
    Bug(
        "`rejected` missing from the fatal causes",
        "shared/health/rules.py",
        "FATAL = (Cause.AUTHENTICATION, Cause.NOT_FOUND, Cause.REJECTED)",
        "FATAL = (Cause.AUTHENTICATION, Cause.NOT_FOUND)",
        "tests/unit/test_health_judgement.py::test_rejected_writes_postpone_the_export",
    ),
    Bug(
        "HTTP 500 classified as fatal (rejected)",
        "shared/outcomes.py",
        "(status >= 500 or status == 408)",
        "(status > 500 or status == 408)",
        "tests/unit/test_causes.py::test_server_errors_are_retried_never_fatal",
    ),
    Bug(
        "a 403 without a known code taken for a rejected write, not a failed authentication",
        "shared/outcomes.py",
        "or status in {401, 403}:",
        "or status == 401:",
        "tests/unit/test_causes.py::test_each_storage_answer_gets_its_cause",
    ),
    Bug(
        "Blob replay files overwritten instead of created only if absent",
        "shared/replay.py",
        "container.upload_blob(path, body, metadata=meta, match_condition=MatchConditions.IfMissing)",
        "container.upload_blob(path, body, metadata=meta, overwrite=True)",
        "tests/integration/test_replay_overtaken.py::test_a_replay_file_is_created_only_if_absent_in_either_storage",
    ),
    Bug(
        "ADLS replay files renamed over an existing one",
        "shared/replay.py",
        'f"{destination.filesystem}/{path}", match_condition=MatchConditions.IfMissing',
        'f"{destination.filesystem}/{path}"',
        "tests/integration/test_replay_overtaken.py::test_a_replay_overtaken_by_its_own_redelivery_loses_no_signal",
    ),
    Bug(
        "a role for project `proj` granting access to `proj-b`",
        "shared/api/auth.py",
        "return Access.OWNER if self.operator else self.grants.get(project_id)",
        "return Access.OWNER if self.operator else next("
        "(a for p, a in self.grants.items() if project_id.startswith(p)), None)",
        "tests/unit/test_authorisation.py::test_a_role_for_one_project_grants_no_project_whose_id_starts_or_ends_alike",
    ),
    Bug(
        "a request body of 1 MiB refused",
        "shared/api/routing.py",
        "int(declared) > MAX_BODY_BYTES",
        "int(declared) >= MAX_BODY_BYTES",
        "tests/unit/test_authorisation.py::test_the_guard_refuses_a_declared_body_over_the_limit",
    ),
    Bug(
        "a `Secret` whose `repr` shows the key",
        "shared/model.py",
        "return \"Secret('***')\"",
        'return f"Secret({self.value!r})"',
        "tests/unit/test_keys_never_printed.py::test_a_secret_hides_its_value_however_it_is_printed",
    ),
    Bug(
        "backlog expiry by creation time",
        "shared/health/check.py",
        "if blob.modified < horizon:",
        "if blob.created < horizon:",
        "tests/integration/test_backlog_retention.py",
    ),
    Bug(
        "a position conflict trusting the cache (no fresh ledger read: rebalance back and forth)",
        "shared/delivery.py",
        "record = authority()\n            if record is FORGOTTEN:\n                return FORGOTTEN\n"
        "            if record is not None:\n                state = state.join(record)",
        "record = None\n            if record is FORGOTTEN:\n                return FORGOTTEN\n"
        "            if record is not None:\n                state = state.join(record)",
        "tests/unit/test_delivery.py::test_a_partition_handed_back_with_a_stale_cache_does_not_duplicate",
    ),
    Bug(
        "another writer's or the customer's file taken for ours",
        "shared/delivery.py",
        "if info.owner != owner or not owner:",
        "if not owner:",
        "tests/unit/test_delivery.py::test_identical_signals_in_a_file_that_is_not_ours_are_not_taken_for_ours",
    ),
    Bug(
        "a partial last line in a file counted as one of ours",
        "shared/delivery.py",
        'for row in region.split(b"\\n")[:-1]:',
        'for row in region.split(b"\\n"):',
        "tests/unit/test_delivery.py::test_a_partial_last_line_in_a_file_is_not_taken_for_one_of_ours",
    ),
    Bug(
        "a payload cut into pieces one line over the request limit",
        "shared/delivery.py",
        "last = max(first, bisect_right(ends, start + limit) - 1)",
        "last = max(first, bisect_right(ends, start + limit))",
        "tests/unit/test_delivery.py::test_a_payload_over_the_limit_is_cut_into_as_few_whole_line_requests_as_it_allows",
    ),
    Bug(
        "the later of two views of a file judged by length only",
        "shared/delivery.py",
        "return other if (other.length, other.last_sequence) > (self.length, self.last_sequence) else self",
        "return other if other.length > self.length else self",
        "tests/unit/test_delivery.py::test_of_two_views_at_one_length_the_one_that_accounted_for_more_signals_is_later",
    ),
    Bug(
        "a file forgotten while its bucket is still open",
        "shared/ledger.py",
        "files = {key: record for key, record in files.items() if record.bucket_end >= horizon}",
        "files = {key: record for key, record in files.items() if record.bucket_end >= horizon - 3600}",
        "tests/unit/test_ledger_saves.py::test_files_of_buckets_that_ended_before_the_horizon_are_forgotten",
    ),
    Bug(
        "hourly folders on a 12-hour clock",
        "shared/layout.py",
        'folder, length = f"{start:%Y/%m/%d/%H}", timedelta(hours=1)',
        'folder, length = f"{start:%Y/%m/%d/%I}", timedelta(hours=1)',
        "tests/unit/test_layout.py::test_folders_and_names_keep_the_hour_on_a_24_hour_clock",
    ),
]


def plant(copy: Path, bug: Bug) -> str | None:
    """Make the bug in the copy; why not, when its code is no longer there exactly once."""
    source = (ROOT / bug.path).read_text()
    if source.count(bug.before) != 1:
        return f"found {source.count(bug.before)} times in {bug.path}"
    (copy / bug.path).write_text(source.replace(bug.before, bug.after))
    return None


def main(words: list[str]) -> int:
    bugs = [bug for bug in BUGS if not words or any(word in bug.name for word in words)]
    python = str(ROOT / ".venv" / "bin" / "python")
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutation"}
    missed = 0
    with tempfile.TemporaryDirectory(prefix="planted-") as tmp:
        copy = Path(tmp)
        for name in COPIED:
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, copy / name)
        for name in LINKED:
            (copy / name).symlink_to(ROOT / name)
        print(f"{'caught':7} bug (test)")
        for bug in bugs:
            problem = plant(copy, bug)
            if problem is None:
                run = subprocess.run(  # noqa: S603 (this repository's own interpreter and tests)
                    [python, *PYTEST, bug.test],
                    cwd=copy,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                shutil.copy2(ROOT / bug.path, copy / bug.path)
                verdicts = {1: None, 0: "survived: the test passed"}
                problem = verdicts.get(run.returncode, f"pytest exited {run.returncode}")
            missed += problem is not None
            print(f"{'yes' if problem is None else 'NO':7} {bug.name} ({bug.test})")
            if problem is not None:
                print(f"        {problem}")
    print(f"{len(bugs) - missed} of {len(bugs)} planted bugs caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
