"""Fixtures for the management API: the app on the service's runtime (Azurite and the ADLS Gen2
emulator), real RS256 tokens signed with a key pair made for the session, and the customer's storage."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devstack.azurite import Azurite
from devstack.tokens import TokenIssuer, roles_for
from shared.api import create_api
from shared.api.config import ApiSettings
from shared.runtime import Runtime
from tests.conftest import BLOB_CUSTOMER, BLOB_CUSTOMER_KEY, LAKE_CUSTOMER, LAKE_CUSTOMER_KEY

# Host names the tests' webhooks use, and the addresses they "resolve" to: nothing is sent to them,
# and no test asks a real DNS server anything.
FAKE_DNS = {
    "hooks.customer.example": "20.50.60.70",
    "internal.customer.example": "10.1.2.3",
}


@pytest.fixture(autouse=True)
def _fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve the tests' webhook hosts from FAKE_DNS; loopback names and addresses as usual; nothing else."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in FAKE_DNS:
            return real(FAKE_DNS[name], port, *args, **kwargs)
        if name == "localhost" or name.replace(".", "").isdigit() or ":" in name:
            return real(host, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (tests resolve no other name)")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    """The session's token issuer: a fresh RS256 key pair."""
    return TokenIssuer.generate(
        issuer="https://login.test.example/tenant/v2.0", audience="api://signals-export-test"
    )


@pytest.fixture(scope="session")
def api_settings(issuer: TokenIssuer) -> ApiSettings:
    """The API trusts the session issuer's JWKS, given directly."""
    return ApiSettings(
        issuers=(issuer.issuer,),
        audiences=(issuer.audience,),
        jwks=json.dumps(issuer.jwks),
    )


@pytest.fixture
def app(service: Runtime, api_settings: ApiSettings) -> FastAPI:
    return create_api(lambda: service.api, settings=api_settings)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def auth(issuer: TokenIssuer) -> Callable[..., dict[str, str]]:
    """Authorization headers: auth(project, role="contributor") or auth(roles=[...])."""

    def headers(
        *projects: str, role: str = "contributor", roles: Sequence[str] | None = None, **claims: Any
    ) -> dict[str, str]:
        granted = list(roles) if roles is not None else roles_for(projects, role)
        return {"Authorization": f"Bearer {issuer.mint(granted, **claims)}"}

    return headers


@pytest.fixture
def writer(auth: Callable[..., dict[str, str]], project: str) -> dict[str, str]:
    """A contributor of the test's project."""
    return auth(project)


@dataclass
class Storage:
    """The customer's storage accounts, as the API is given them."""

    lake: Any
    azurite: Azurite

    @property
    def lake_uri(self) -> str:
        return str(self.lake.url(LAKE_CUSTOMER)) + "/"

    @property
    def blob_uri(self) -> str:
        return self.azurite.url("blob", BLOB_CUSTOMER) + "/"

    def adls(self, path: str | None = None, *, key: str = LAKE_CUSTOMER_KEY, **body: Any) -> dict[str, Any]:
        """An ADLS export's body, on a filesystem of its own."""
        path = path or f"fs-{uuid.uuid4().hex[:10]}/signals/"
        document: dict[str, Any] = {
            "destination": {"type": "adls", "uri": self.lake_uri, "path": path, "sharedKey": key},
            "granularity": "hour",
            "signals": "all",
        }
        document.update(body)
        return document

    def blob(
        self, container: str | None = None, *, key: str = BLOB_CUSTOMER_KEY, **body: Any
    ) -> dict[str, Any]:
        container = container or f"ct-{uuid.uuid4().hex[:10]}"
        document: dict[str, Any] = {
            "destination": {"type": "blob", "uri": self.blob_uri, "container": container, "sharedKey": key},
            "signals": "all",
        }
        document.update(body)
        return document


@pytest.fixture
def storage(lake: Any, azurite: Azurite) -> Storage:
    return Storage(lake, azurite)


def export_url(project: str, export_id: str, action: str = "") -> str:
    return f"/api/projects/{project}/exports/{export_id}" + (f"/{action}" if action else "")


@pytest.fixture
def new_id() -> Callable[[], str]:
    return lambda: f"exp-{uuid.uuid4().hex[:8]}"


def stored(service: Runtime, project: str) -> dict[str, Any]:
    """The project's exports as the table holds them (to show that a refused request changed nothing)."""
    return {e.export_id: e for e in service.exports.list(project)}


def raw_entities(azurite: Azurite) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every entity of every table of the service's storage, raw."""
    tables = TableServiceClient.from_connection_string(azurite.connection_string())
    for table in tables.list_tables():
        for entity in tables.get_table_client(table.name).list_entities():
            yield table.name, dict(entity)
