"""The API mounted in the Functions app (func.AsgiFunctionApp), as the host calls it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import azure.functions as func
import pytest

from devstack.tokens import TokenIssuer
from shared.runtime import Runtime
from tests.api.conftest import Storage
from tests.support import registered

pytestmark = pytest.mark.integration


def _call(method: str, url: str, headers: dict[str, str], body: Any = None) -> func.HttpResponse:
    request = func.HttpRequest(
        method=method,
        url=url,
        headers=headers,
        body=json.dumps(body).encode() if body is not None else b"",
    )
    response = asyncio.run(registered("management_api")(request, None))
    assert isinstance(response, func.HttpResponse)
    return response


def test_the_functions_host_serves_the_api_with_settings_from_the_environment(
    service: Runtime,
    issuer: TokenIssuer,
    storage: Storage,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the Functions ASGI adapter, with AUTH_* from the environment: 401 without a token, 201 and 200 with one."""
    monkeypatch.setenv("AUTH_ISSUER", issuer.issuer)
    monkeypatch.setenv("AUTH_AUDIENCE", issuer.audience)
    monkeypatch.setenv("AUTH_JWKS", json.dumps(issuer.jwks))
    base = f"http://localhost:7071/api/projects/{project}/exports"
    assert _call("GET", base, {}).status_code == 401
    headers = {"Authorization": "Bearer " + issuer.mint([f"Exports.Write.{project}"])}
    created = _call("PUT", base + "/fa", {**headers, "Content-Type": "application/json"}, storage.adls())
    assert created.status_code == 201, created.get_body()
    listed = _call("GET", base, headers)
    assert listed.status_code == 200
    assert [e["id"] for e in json.loads(listed.get_body())["value"]] == ["fa"]
