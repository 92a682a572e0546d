"""The module command lines (`python -m devstack.tokens`, `devstack.adls_emulator`, `bench`): each has
--help, and a wrong option ends with a usage error, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.__main__ import app as bench_app
from devstack import tokens
from devstack.adls_emulator.__main__ import app as emulator_app

APPS = {"tokens": tokens.app, "emulator": emulator_app, "bench": bench_app}


@pytest.mark.parametrize("name", APPS)
def test_every_module_command_line_has_help(name: str) -> None:
    """`--help` describes the command and each option, and exits 0."""
    result = CliRunner().invoke(APPS[name], ["--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--help" in result.output


@pytest.mark.parametrize(
    ("name", "args", "says"),
    [
        ("tokens", [], "--project"),
        ("tokens", ["--project", "p", "--role", "boss"], "--role"),
        ("tokens", ["--project", "p", "--minutes", "soon"], "--minutes"),
        ("emulator", ["--account", "no-key"], "NAME:BASE64KEY"),
        ("emulator", ["--port", "x"], "--port"),
        ("bench", ["--only", "cpu,nope"], "unknown sections"),
    ],
)
def test_a_wrong_option_is_a_usage_error(name: str, args: list[str], says: str) -> None:
    """A missing project, an unknown role or section, a malformed account or number: the reason
    and exit status 2, before anything runs."""
    result = CliRunner().invoke(APPS[name], args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_tokens_main_returns_the_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`devstack.tokens.main` (what `python -m devstack.tokens` runs) returns 0 after printing a token,
    and 2 for a usage error, as argparse's parser did."""
    key_file = str(tmp_path / "dev-token-key.pem")
    assert tokens.main(["--role", "admin", "--key-file", key_file]) == 0
    assert capsys.readouterr().out.count(".") == 2  # header.claims.signature
    assert tokens.main(["--key-file", key_file]) == 2
