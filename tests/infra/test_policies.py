"""The project's checkov policies (infra/policies, CKV_SIGX_*): on small deployments that each keep or break
a rule (tests/infra/fixtures/<case>), on the templates as they were before issue 21 (fixtures/de9bbb6), and
on infra/ with the project's own checkov command. checkov runs in its own virtualenv (scripts/checkov)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
POLICIES = ("CKV_SIGX_1", "CKV_SIGX_2", "CKV_SIGX_3", "CKV_SIGX_4")
ENV = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "ANSI_COLORS_DISABLED": "1", "LOG_LEVEL": "WARNING"}

Key = tuple[str, str, str]  # (file under the scanned folder, resource, check id)


@dataclass(frozen=True)
class Scan:
    results: dict[Key, str]  # PASSED or FAILED
    reasons: list[str]  # the policies' log lines: "CKV_SIGX_n <where>: <why>"

    def case(self, case: str) -> dict[Key, str]:
        return {key: result for key, result in self.results.items() if key[0].startswith(f"/{case}/")}

    def reasons_of(self, case: str) -> str:
        return "\n".join(line for line in self.reasons if f"fixtures/{case}/" in line)


def parse(stdout: str, stderr: str) -> Scan:
    report = json.loads(stdout)
    results = {}
    for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
        for record in report["results"][outcome]:
            if record["check_id"] in POLICIES:
                key = (record["file_path"], record["resource"], record["check_id"])
                results[key] = record["check_result"]["result"]
    reasons = [line[line.index("CKV_SIGX_") :] for line in stderr.splitlines() if "CKV_SIGX_" in line]
    return Scan(results, reasons)


@pytest.fixture(scope="module")
def checkov() -> Path:
    """checkov from its own virtualenv, which scripts/checkov creates on first use."""
    venv = Path(os.environ.get("CHECKOV_VENV", ROOT / ".venv-checkov"))
    if not (venv / "bin" / "checkov").exists():
        subprocess.run([ROOT / "scripts" / "checkov", "--version"], cwd=ROOT, env=ENV, check=True)
    return venv / "bin" / "checkov"


@pytest.fixture(scope="module")
def fixtures(checkov: Path) -> Scan:
    """One checkov run over every fixture deployment, with the project's policies only."""
    run = subprocess.run(
        [
            checkov,
            "-d",
            FIXTURES.relative_to(ROOT),
            "--framework",
            "bicep",
            "--skip-download",
            "-o",
            "json",
            "--external-checks-dir",
            "infra/policies",
            "--check",
            ",".join(POLICIES),
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode in (0, 1), run.stderr
    return parse(run.stdout, run.stderr)


SITE, WORKSPACE, REGISTRY = (
    "Microsoft.Web/sites",
    "Microsoft.OperationalInsights/workspaces",
    "bicep_registry_alias",
)

# Per fixture deployment: (file, resource, "1P 2F 4P": CKV_SIGX_1 passed, 2 failed, 4 passed). A policy that
# does not apply to a resource (CKV_SIGX_1 on a Premium site) gives no result at all.
CASES: dict[str, list[tuple[str, str, str]]] = {
    "good": [("app/site.bicep", f"{SITE}.site", "1P 2P 4P"), ("main.bicep", f"{REGISTRY}.workspace", "3P")],
    "refused-properties": [
        ("main.bicep", f"{SITE}.flexSite", "1F 2P 4P"),
        ("main.bicep", f"{SITE}.premiumSite", "4P"),
    ],
    "scale-caller-unbounded": [("app/site.bicep", f"{SITE}.site", "1P 2F 4P")],
    "scale-literal": [("main.bicep", f"{SITE}.site", "1P 2F 4P")],
    "scale-hidden": [
        ("main.bicep", f"{SITE}.unbounded", "1P 2F 4P"),
        ("main.bicep", f"{SITE}.computed", "1P 2F 4P"),
    ],
    "saved-searches-module": [("main.bicep", f"{REGISTRY}.workspace", "3F")],
    "saved-searches-resource": [
        ("main.bicep", f"{WORKSPACE}.forced", "3F"),
        ("main.bicep", f"{WORKSPACE}.chosen", "3F"),
        ("main.bicep", f"{WORKSPACE}.plain", "3P"),
    ],
    "saved-searches-linked": [("main.bicep", f"{REGISTRY}.workspace", "3P")],
    "no-saved-searches": [("main.bicep", f"{REGISTRY}.workspace", "3P")],
    "keys-in-settings": [
        ("main.bicep", f"{SITE}.keyed", "1P 2P 4F"),
        ("main.bicep", f"{SITE}.systemAssigned", "1P 2P 4P"),
    ],
    "settings-hidden": [("main.bicep", f"{SITE}.site", "1F 2P 4F")],
    "site-module": [("main.bicep", f"{REGISTRY}.site", "1F")],
    "de9bbb6": [
        ("app/api.bicep", f"{SITE}.functionApp", "1F 2F 4P"),
        ("app/resources.bicep", f"{REGISTRY}.logAnalytics", "3F"),
    ],
}


def expected(case: str) -> dict[Key, str]:
    outcome = {"P": "PASSED", "F": "FAILED"}
    return {
        (f"/{case}/{file}", resource, f"CKV_SIGX_{verdict[0]}"): outcome[verdict[1]]
        for file, resource, verdicts in CASES[case]
        for verdict in verdicts.split()
    }


def test_every_fixture_deployment_has_its_expectations() -> None:
    """Each folder under fixtures/ is a case of CASES, so none is scanned without being judged."""
    assert {path.name for path in FIXTURES.iterdir() if path.is_dir()} == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_policy_passes_or_fails_each_fixture_as_expected(fixtures: Scan, case: str) -> None:
    """Per fixture deployment, exactly the expected CKV_SIGX results: no missing, extra or flipped one."""
    assert fixtures.case(case) == expected(case), fixtures.reasons_of(case)


def test_the_templates_before_issue_21_fail_for_the_reasons_of_the_issue(fixtures: Scan) -> None:
    """de9bbb6: ftpsState on the Flex site, maximumInstanceCount from 1 at every level, saved searches
    beside the workspace module's forceCmkForQuery default."""
    reasons = fixtures.reasons_of("de9bbb6")
    assert "resource functionApp properties.siteConfig.ftpsState: FTPS is not supported" in reasons
    for template in ("main.bicep:56", "app/resources.bicep:48", "app/api.bicep:36"):
        assert f"de9bbb6/{template} param maximumInstanceCount admits 1 to 1000" in reasons
    assert (
        "module logAnalytics forceCmkForQuery (not set: avm/res/operational-insights/workspace defaults"
        in reasons
    )
    assert "app/workbook.bicep:64 resource savedSearches" in reasons


def test_refused_flex_properties_and_settings_are_each_named(fixtures: Scan) -> None:
    """Every refused property (site config and config/web) and setting is reported; the Premium site's are
    not, since the rule is Flex's."""
    reasons = fixtures.reasons_of("refused-properties")
    for refused in (
        "properties.siteConfig.ftpsState",
        "properties.siteConfig.alwaysOn",
        "properties.siteConfig.linuxFxVersion",
        "config/web properties.use32BitWorkerProcess",
        "app setting FUNCTIONS_WORKER_RUNTIME",
        "app setting WEBSITE_RUN_FROM_PACKAGE",
    ):
        assert refused in reasons
    assert "premiumSite" not in reasons


def test_a_bounded_parameter_does_not_excuse_an_unbounded_caller(fixtures: Scan) -> None:
    """The site's own @minValue(40) is not enough: the caller's parameter, which a deployer sets, takes 8."""
    reasons = fixtures.reasons_of("scale-caller-unbounded")
    assert "scale-caller-unbounded/main.bicep:4 param maximumInstanceCount admits 1 to 1000" in reasons
    assert "app/site.bicep" not in reasons


def test_values_the_policy_cannot_see_fail_instead_of_passing(fixtures: Scan) -> None:
    """A parameter with no bounds (checkov renders its default, 100) and a computed value both fail,
    each saying why; so do app settings built by a function."""
    reasons = fixtures.reasons_of("scale-hidden")
    assert "scale-hidden/main.bicep:4 param maximumInstanceCount admits any int" in reasons
    assert re.search(
        r"resource computed scaleAndConcurrency\.maximumInstanceCount: cannot see the value", reasons
    )
    assert "cannot see the app settings" in fixtures.reasons_of("settings-hidden")
    assert "cannot be seen into" in fixtures.reasons_of("site-module")


def test_out_of_bounds_literals_are_reported_with_the_accepted_values(fixtures: Scan) -> None:
    """Literals reached through a variable: 8 instances and 1024 MB, with what Flex accepts."""
    reasons = fixtures.reasons_of("scale-literal")
    assert "maximumInstanceCount: 8 is not 40 to 1000" in reasons
    assert "instanceMemoryMB: 1024 is not 512 or 2048 or 4096" in reasons


def test_a_forcing_workspace_fails_only_with_saved_searches_and_no_query_storage(fixtures: Scan) -> None:
    """Forced (literally or by a parameter a deployer can set) with saved searches fails; a linked 'Query'
    account or no saved search passes (results above); the reasons name the saved searches."""
    reasons = fixtures.reasons_of("saved-searches-resource")
    assert "resource forced forceCmkForQuery: true is not false" in reasons
    assert "param forceCmkForQuery admits any bool; it must admit only false" in reasons
    assert "main.bicep:29 resource search" in reasons
    assert "module workspace, savedSearches" in fixtures.reasons_of("saved-searches-module")


def test_each_connection_string_key_and_missing_identity_setting_is_reported(fixtures: Scan) -> None:
    """The keyed site fails for every rule of CKV_SIGX_4; the site with a system-assigned identity and a
    Key Vault reference does not."""
    reasons = fixtures.reasons_of("keys-in-settings")
    for expected in (
        "app setting AzureWebJobsStorage: a connection string",
        "var storageConnection: DefaultEndpointsProtocol",
        "app setting EventHubConnection: a connection string beside identity settings EventHubConnection__",
        "SharedAccessKey",
        "EventHubConnection__credential must be 'managedidentity'",
        "EventHubConnection__clientId is missing",
        "param webhookSecret is @secure() (WEBHOOK_SECRET)",
        "APPINSIGHTS_INSTRUMENTATIONKEY: ingestion with the instrumentation key",
        "APPLICATIONINSIGHTS_CONNECTION_STRING without APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "deployment storage authenticated with StorageAccountConnectionString",
    ):
        assert expected in reasons
    assert "systemAssigned" not in reasons


def test_infra_keeps_every_policy_with_the_projects_checkov_command(checkov: Path) -> None:
    """scripts/checkov (the command scripts/test runs, with .checkov.yaml) loads the four policies, each
    judges infra/ at least once, and none fails."""
    run = subprocess.run(
        [ROOT / "scripts" / "checkov", "--output", "json"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    scan = parse(run.stdout, run.stderr)
    assert {key[2] for key in scan.results} == set(POLICIES)
    assert set(scan.results.values()) == {"PASSED"}, scan.reasons


def test_the_policies_type_check_against_checkov(checkov: Path, tmp_path: Path) -> None:
    """mypy --strict on infra/policies with checkov's interpreter, so their use of checkov's and pycep's
    types is checked too (the project's mypy run has neither installed)."""
    policies = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "infra" / "policies").glob("[!_]*.py"))
    mypy = [sys.executable, "-m", "mypy", "--strict", "--warn-unreachable", "--cache-dir", str(tmp_path)]
    run = subprocess.run(
        [*mypy, "--python-executable", str(checkov.parent / "python"), *policies],
        cwd=ROOT,
        env={**ENV, "MYPYPATH": str(ROOT / "infra" / "policies" / "lib")},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(policies) == 4
