"""local.settings.json, for `func start`: a template of every setting the code reads, each documented
in the README; the local host sets the same settings; every command has --help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devstack.cli import app
from devstack.host import local_settings, template_settings
from devstack.tokens import DEV_AUDIENCE, DEV_ISSUER
from tests.unit.test_settings import settings_the_code_reads

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = json.loads((ROOT / "local.settings.json").read_text())


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return re.split(r"\n## ", text.split("\n## Running it locally\n", 1)[1], maxsplit=1)[0]


def test_the_template_holds_every_setting_the_code_reads() -> None:
    """Each app setting function_app.py and shared/ read is in local.settings.json's Values."""
    missing = sorted(set(settings_the_code_reads()) - set(TEMPLATE["Values"]))
    assert not missing, f"add to local.settings.json (and the README's table): {missing}"


def test_each_setting_of_the_template_is_documented_in_the_readme() -> None:
    """The README's 'Running it locally' section names every setting of the template."""
    section = readme_section()
    undocumented = [name for name in TEMPLATE["Values"] if f"`{name}`" not in section]
    assert not undocumented, undocumented


def test_the_template_points_at_local_storage_and_trusts_development_tokens() -> None:
    """Azurite through UseDevelopmentStorage=true, emulator hosts allowed, the dev token issuer, and no
    secret in the file (KEY_ENCRYPTION_KEY comes from the data folder)."""
    values = TEMPLATE["Values"]
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert "127.0.0.1" in values["ALLOWED_STORAGE_SUFFIXES"].split(",")
    assert (values["AUTH_ISSUER"], values["AUTH_AUDIENCE"]) == (DEV_ISSUER, DEV_AUDIENCE)
    assert values["KEY_ENCRYPTION_KEY"] == "" and values["EventHubConnection"] == ""
    assert TEMPLATE["Host"]["LocalHttpPort"] == 7071


def test_the_local_host_sets_what_the_template_sets() -> None:
    """The host starts from the template: same values, with its own storage, key and token issuer."""
    values = local_settings(storage_connection="conn", key="k", token_settings={"AUTH_JWKS": "/x.json"})
    for name, value in template_settings().items():
        if name not in {"AzureWebJobsStorage", "AUTH_JWKS"}:
            assert values[name] == value, name
    assert values["AzureWebJobsStorage"] == "conn" and values["KEY_ENCRYPTION_KEY"] == "k"


@pytest.mark.parametrize("command", [[], ["walkthrough"], ["host"], ["produce"], ["token"], ["storage"]])
def test_every_command_has_help(command: list[str]) -> None:
    """`scripts/run <command> --help` describes the command and its options."""
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--help" in result.output


def test_scripts_run_runs_the_walkthrough_by_default_and_passes_commands_through() -> None:
    """`scripts/run` with no command (or only options) is the walkthrough; known commands pass through."""
    script = (ROOT / "scripts" / "run").read_text()
    assert "ensure_python_env requirements-dev.txt" in script and "ensure_azurite" in script
    assert "set -- walkthrough" in script
    assert re.search(r"walkthrough \| host \| produce \| token \| storage", script)
    assert 'exec .venv/bin/python -m devstack "$@"' in script
