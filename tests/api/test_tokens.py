"""Development tokens (devstack.tokens): minted by the CLI, trusted by an API given the dev JWKS file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devstack.tokens import TokenIssuer, main
from shared.api import create_api
from shared.api.config import ApiSettings
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url

pytestmark = pytest.mark.integration


def test_the_cli_mints_tokens_that_the_host_trusts_through_its_jwks_file(
    service: Runtime, storage: Storage, project: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m devstack.tokens` prints a token with the role asked for; the host's AUTH_* settings (--settings) trust it."""
    key_file = tmp_path / "devstack" / "dev-token-key.pem"
    assert main(["--project", project, "--role", "reader", "--key-file", str(key_file)]) == 0
    reader = capsys.readouterr().out.strip()
    assert main(["--settings", "--key-file", str(key_file)]) == 0
    settings = json.loads(capsys.readouterr().out)
    assert Path(settings["AUTH_JWKS"]) == key_file.with_name("dev-jwks.json")
    assert (
        TokenIssuer.load_or_create(key_file).kid
        == json.loads(Path(settings["AUTH_JWKS"]).read_text())["keys"][0]["kid"]
    )
    assert key_file.stat().st_mode & 0o077 == 0, "the private key is readable by its owner only"

    client = TestClient(create_api(lambda: service.api, settings=ApiSettings.from_env(settings)))
    headers = {"Authorization": f"Bearer {reader}"}
    assert client.get(f"/api/projects/{project}/exports", headers=headers).status_code == 200
    assert client.put(export_url(project, "e"), json=storage.adls(), headers=headers).status_code == 403
    assert main(["--project", project, "--role", "contributor", "--key-file", str(key_file)]) == 0
    writer = {"Authorization": "Bearer " + capsys.readouterr().out.strip()}
    assert client.put(export_url(project, "e"), json=storage.adls(), headers=writer).status_code == 201
    assert main(["--role", "admin", "--key-file", str(key_file)]) == 0
    admin = {"Authorization": "Bearer " + capsys.readouterr().out.strip()}
    assert client.get("/api/exports", headers=admin).status_code == 200
