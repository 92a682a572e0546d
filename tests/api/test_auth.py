"""Authentication (Entra ID bearer tokens, App Service's principal) and project grants from app roles."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from devstack.tokens import TokenIssuer
from shared.api import create_api
from shared.api.config import ApiSettings
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored
from tests.receivers import serving_json

pytestmark = pytest.mark.integration


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _assert_401(response: Any, code: str = "InvalidAuthenticationToken") -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_reader_can_read_but_not_change(
    client: TestClient,
    auth: Callable[..., dict[str, str]],
    storage: Storage,
    project: str,
    service: Runtime,
) -> None:
    """A reader lists, reads and sees health; every change answers 403 AuthorizationFailed and changes nothing."""
    url = export_url(project, "r1")
    assert client.put(url, json=storage.adls(), headers=auth(project)).status_code == 201
    before = stored(service, project)
    reader = auth(project, role="reader")
    assert client.get(url, headers=reader).status_code == 200
    assert client.get(f"/api/projects/{project}/exports", headers=reader).status_code == 200
    attempts = [
        client.put(url, json=storage.adls(), headers=reader),
        client.put(export_url(project, "r2"), json=storage.adls(), headers=reader),
        client.patch(url, json={"signals": ["x"]}, headers=reader),
        client.delete(url, headers=reader),
        client.post(url + "/disable", headers=reader),
        client.post(url + "/enable", headers=reader),
        client.post(url + "/resume", headers=reader),
    ]
    for response in attempts:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "AuthorizationFailed"
    assert stored(service, project) == before


def test_owner_and_operator_may_change(
    client: TestClient, auth: Callable[..., dict[str, str]], storage: Storage, project: str
) -> None:
    """Exports.Owner.<project> and the operator role Exports.Admin may create and change exports."""
    owner = client.put(export_url(project, "o1"), json=storage.adls(), headers=auth(project, role="owner"))
    assert owner.status_code == 201, owner.text
    operator = auth(roles=["Exports.Admin"])
    assert client.post(export_url(project, "o1", "disable"), headers=operator).status_code == 200


def test_another_projects_export_does_not_exist_for_the_caller(
    client: TestClient,
    auth: Callable[..., dict[str, str]],
    storage: Storage,
    project: str,
    service: Runtime,
) -> None:
    """With a role on another project only (or a wildcard role), every route of this project answers 404."""
    url = export_url(project, "secret-export")
    client.put(url, json=storage.adls(), headers=auth(project))
    before = stored(service, project)
    for stranger in (
        auth("some-other-project"),
        auth(roles=["Exports.Write.*", "Exports.Read.*"]),
        auth(roles=[f"Exports.Write.{project}x", f"exports.write.{project}", f"Exports.Delete.{project}"]),
    ):
        responses = [
            client.get(url, headers=stranger),
            client.get(url + "/health", headers=stranger),
            client.put(url, json=storage.adls(), headers=stranger),
            client.patch(url, json={"signals": ["x"]}, headers=stranger),
            client.delete(url, headers=stranger),
            client.post(url + "/disable", headers=stranger),
        ]
        for response in responses:
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "ExportNotFound"
        listing = client.get(f"/api/projects/{project}/exports", headers=stranger)
        assert listing.status_code == 404 and listing.json()["error"]["code"] == "ProjectNotFound"
        assert client.get("/api/exports", headers=stranger).json() == {"value": []}
    assert stored(service, project) == before


def test_missing_expired_and_forged_tokens_answer_401(
    client: TestClient, issuer: TokenIssuer, project: str
) -> None:
    """No token, an expired one, a wrong audience or issuer, an unsigned or foreign-signed token: 401 with WWW-Authenticate."""
    url = f"/api/projects/{project}/exports"
    roles = [f"Exports.Write.{project}"]
    missing = client.get(url)
    _assert_401(missing, "AuthenticationRequired")
    now = time.time()
    _assert_401(
        client.get(url, headers={"Authorization": "Bearer " + issuer.mint(roles, issued_at=now - 7200)}),
        "ExpiredAuthenticationToken",
    )
    stranger = TokenIssuer.generate(issuer=issuer.issuer, audience=issuer.audience)
    claims = {"iss": issuer.issuer, "aud": issuer.audience, "exp": int(now + 600), "roles": roles}
    hs256 = jwt.encode(claims, "a-shared-secret-of-at-least-32-bytes!", algorithm="HS256")
    tampered = issuer.mint(roles).split(".")
    tampered[1] = _b64({**claims, "roles": ["Exports.Admin"]})
    forged = [
        issuer.mint(roles, audience="api://someone-else"),
        issuer.mint(roles, issuer="https://login.evil.example/v2.0"),
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        stranger.mint(roles),  # right claims, a key the API does not trust
        jwt.encode(claims, stranger.private_key, algorithm="RS256", headers={"kid": issuer.kid}),
        hs256,
        ".".join(tampered),
        "not-a-jwt",
        issuer.mint(roles, extra={"exp": None}),
    ]
    for token in forged:
        _assert_401(client.get(url, headers={"Authorization": f"Bearer {token}"}))
    _assert_401(client.get(url, headers={"Authorization": "Basic dXNlcjpwdw=="}), "AuthenticationRequired")


def test_authentication_comes_before_the_body(client: TestClient, project: str, service: Runtime) -> None:
    """An unauthenticated request with a broken body answers 401, not 400: nothing is parsed first."""
    response = client.put(
        export_url(project, "e"), content=b"{broken", headers={"Content-Type": "application/json"}
    )
    _assert_401(response, "AuthenticationRequired")
    assert stored(service, project) == {}


def _principal(roles: list[str]) -> str:
    claims = [{"typ": "roles", "val": role} for role in roles]
    claims.append({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "oid-1"})
    document = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_app_service_principal_is_trusted_only_when_configured(
    service: Runtime, api_settings: ApiSettings, storage: Storage, project: str
) -> None:
    """X-MS-CLIENT-PRINCIPAL is ignored (401) unless TRUST_APP_SERVICE_AUTH is on; then its roles grant projects."""
    header = {"X-MS-CLIENT-PRINCIPAL": _principal([f"Exports.Write.{project}"])}
    url = export_url(project, "easy")
    untrusting = TestClient(create_api(lambda: service.api, settings=api_settings))
    _assert_401(untrusting.put(url, json=storage.adls(), headers=header), "AuthenticationRequired")
    trusting_settings = ApiSettings(**{**api_settings.__dict__, "trust_app_service_auth": True})
    trusting = TestClient(create_api(lambda: service.api, settings=trusting_settings))
    assert trusting.put(url, json=storage.adls(), headers=header).status_code == 201
    reader = {"X-MS-CLIENT-PRINCIPAL": _principal([f"Exports.Read.{project}"])}
    assert trusting.delete(url, headers=reader).status_code == 403
    _assert_401(trusting.get(url, headers={"X-MS-CLIENT-PRINCIPAL": "%%% not base64"}))


@pytest.fixture
def jwks_server(issuer: TokenIssuer) -> Iterator[tuple[str, list[str]]]:
    """The issuer's JWKS served over HTTP on 127.0.0.1, with a log of the requests it answered."""
    with serving_json(json.dumps(issuer.jwks).encode(), "/discovery/v2.0/keys") as server:
        yield server


def test_signing_keys_are_fetched_from_the_jwks_uri_and_cached(
    service: Runtime, issuer: TokenIssuer, jwks_server: tuple[str, list[str]], project: str
) -> None:
    """With AUTH_JWKS_URI, the keys are fetched once and then served from the cache."""
    uri, served = jwks_server
    settings = ApiSettings(issuers=(issuer.issuer,), audiences=(issuer.audience,), jwks_uri=uri)
    client = TestClient(create_api(lambda: service.api, settings=settings))
    headers = {"Authorization": "Bearer " + issuer.mint([f"Exports.Read.{project}"])}
    for _ in range(3):
        assert client.get(f"/api/projects/{project}/exports", headers=headers).status_code == 200
    assert served == ["/discovery/v2.0/keys"]


def test_unconfigured_bearer_authentication_refuses_every_token(
    service: Runtime, issuer: TokenIssuer
) -> None:
    """Without AUTH_ISSUER, AUTH_AUDIENCE and keys, no token is accepted."""
    client = TestClient(create_api(lambda: service.api, settings=ApiSettings()))
    headers = {"Authorization": "Bearer " + issuer.mint(["Exports.Admin"])}
    _assert_401(client.get("/api/exports", headers=headers))


def test_settings_are_read_from_the_environment() -> None:
    """ApiSettings.from_env reads the AUTH_* settings and the trust flag."""
    settings = ApiSettings.from_env(
        {
            "AUTH_ISSUER": "https://login.microsoftonline.com/t/v2.0, https://sts.windows.net/t/",
            "AUTH_AUDIENCE": "api://signals-export",
            "AUTH_JWKS_URI": "https://login.microsoftonline.com/t/discovery/v2.0/keys",
            "TRUST_APP_SERVICE_AUTH": "true",
        }
    )
    assert settings.issuers == ("https://login.microsoftonline.com/t/v2.0", "https://sts.windows.net/t/")
    assert settings.bearer_configured and settings.trust_app_service_auth
    assert not ApiSettings.from_env({}).bearer_configured
