"""Who may do what, without storage: app roles into project grants, tokens and App Service's principal
into callers, and the guard every route runs (404 for a project the caller has no role for, 403 for a
reader's change). tests/api/test_auth.py runs the same rules through the whole API on Azurite."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from devstack.tokens import TokenIssuer
from shared.api.auth import (
    ADMIN_ROLE,
    CLOCK_SKEW_SECONDS,
    MAX_TOKEN_LENGTH,
    Access,
    Authenticator,
    Caller,
    grants_from_roles,
)
from shared.api.config import ApiSettings
from shared.api.errors import ApiError, install_error_handlers
from shared.api.limits import MAX_BODY_BYTES
from shared.api.routing import MEDIA_TYPES, GuardedRoute
from shared.api.rules import ID_RULE
from tests.receivers import serving_json

EXPORT = "/api/projects/{projectId}/exports/{exportId}"


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    """A token issuer of this module's own: a fresh RS256 key pair."""
    return TokenIssuer.generate(issuer="https://login.test.example/t/v2.0", audience="api://unit")


@pytest.fixture(scope="module")
def settings(issuer: TokenIssuer) -> ApiSettings:
    """Settings that trust the issuer's keys, given directly as a JWKS document."""
    return ApiSettings(issuers=(issuer.issuer,), audiences=(issuer.audience,), jwks=json.dumps(issuer.jwks))


def refusal(call: Any, *args: Any) -> ApiError:
    """The ApiError a call raises."""
    with pytest.raises(ApiError) as raised:
        call(*args)
    return raised.value


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def principal(claims: list[tuple[str, str]], **extra: Any) -> str:
    """An App Service X-MS-CLIENT-PRINCIPAL header value with these claims."""
    document = {"auth_typ": "aad", "claims": [{"typ": t, "val": v} for t, v in claims], **extra}
    return base64.b64encode(json.dumps(document).encode()).decode()


# -- roles into grants ---------------------------------------------------------------------------------


def test_each_role_gives_its_level_on_its_project_and_nothing_else() -> None:
    """Read, Write and Owner give their level on the project they name; Exports.Admin makes an operator."""
    grants, operator = grants_from_roles(
        ["Exports.Read.alpha", "Exports.Write.beta", "Exports.Owner.gamma", "Exports.Read.team.one"]
    )
    assert grants == {
        "alpha": Access.READ,
        "beta": Access.WRITE,
        "gamma": Access.OWNER,
        "team.one": Access.READ,
    }
    assert not operator
    assert grants_from_roles([ADMIN_ROLE]) == ({}, True)
    assert grants_from_roles(["Exports.Read.alpha", ADMIN_ROLE, "Exports.Write.beta"]) == (
        {"alpha": Access.READ, "beta": Access.WRITE},
        True,
    )


def test_the_highest_of_several_roles_on_one_project_counts_in_any_order() -> None:
    """A reader who is also an owner of the project is an owner, whichever role comes first."""
    roles = ["Exports.Read.alpha", "Exports.Owner.alpha", "Exports.Write.alpha"]
    assert grants_from_roles(roles)[0] == {"alpha": Access.OWNER}
    assert grants_from_roles(list(reversed(roles)))[0] == {"alpha": Access.OWNER}


@pytest.mark.parametrize(
    "role",
    [
        "Exports.Write.*",
        "Exports.Read.*",
        "Exports.Admin.alpha",
        "exports.write.alpha",
        "Exports.Delete.alpha",
        "Exports.Write",
        "Exports.Write.",
        "Signals.Write.alpha",
        "Exports.Write.-alpha",
        "Exports.Write.alpha/beta",
        "Exports.Admins",
        "",
    ],
)
def test_a_malformed_or_wildcard_role_grants_nothing(role: str) -> None:
    """Only the exact role names grant anything; `*` is not a project (every project: Exports.Admin)."""
    assert grants_from_roles([role]) == ({}, False)
    assert grants_from_roles([role, "Exports.Read.alpha"]) == ({"alpha": Access.READ}, False)


def test_a_role_for_one_project_grants_no_project_whose_id_starts_or_ends_alike() -> None:
    """Exports.Write.proj gives nothing on proj-b, proj.b, pro or xproj: project ids are compared whole."""
    caller = Caller.from_roles("u", ["Exports.Write.proj"])
    assert caller.access("proj") is Access.WRITE
    for other in ("proj-b", "proj.b", "projb", "pro", "xproj", "PROJ", "proj "):
        assert caller.access(other) is None
        with pytest.raises(ApiError) as raised:
            caller.require(other, Access.READ)
        assert raised.value.status == 404
    assert caller.projects() == frozenset({"proj"})


# -- the caller's checks -------------------------------------------------------------------------------


def test_an_unknown_project_is_not_found_and_a_readers_change_is_forbidden() -> None:
    """No role: 404 (ExportNotFound under an export, ProjectNotFound otherwise); a reader's change: 403."""
    reader = Caller.from_roles("u", ["Exports.Read.alpha"])
    missing = refusal(reader.require, "beta", Access.READ)
    assert (missing.status, missing.code, missing.target) == (404, "ProjectNotFound", "projectId")
    assert "beta" not in missing.message and "was not found" in missing.message  # never quotes the id
    missing_export = refusal(reader.require, "beta", Access.READ, "e1")
    assert (missing_export.status, missing_export.code, missing_export.target) == (
        404,
        "ExportNotFound",
        "exportId",
    )
    forbidden = refusal(reader.require, "alpha", Access.WRITE, "e1")
    assert (forbidden.status, forbidden.code) == (403, "AuthorizationFailed")
    assert "Exports.Write.alpha" in forbidden.message, "the 403 names the role that would allow the change"
    reader.require("alpha", Access.READ, "e1")


@pytest.mark.parametrize("level", ["Write", "Owner"])
def test_a_contributor_or_owner_may_read_and_change_their_project(level: str) -> None:
    """Exports.Write and Exports.Owner pass both the read and the change check."""
    caller = Caller.from_roles("u", [f"Exports.{level}.alpha"])
    caller.require("alpha", Access.READ)
    caller.require("alpha", Access.WRITE, "e1")
    assert refusal(caller.require, "beta", Access.READ).status == 404


def test_an_operator_is_owner_of_every_project_and_sees_them_all() -> None:
    """Exports.Admin: owner of any project, even one no role names; projects() is None (every one)."""
    operator = Caller.from_roles("ops", [ADMIN_ROLE])
    assert operator.access("anything") is Access.OWNER
    operator.require("anything", Access.OWNER, "e1")
    assert operator.projects() is None
    assert Caller.from_roles("u", []).projects() == frozenset()


# -- tokens ----------------------------------------------------------------------------------------------


def test_a_valid_token_gives_its_subject_and_grants(issuer: TokenIssuer, settings: ApiSettings) -> None:
    """The token's roles grant projects; the subject is its object id (else its sub)."""
    authenticator = Authenticator(settings)
    caller = authenticator.authenticate(bearer(issuer.mint(["Exports.Write.alpha"], subject="ann")))
    assert caller.grants == {"alpha": Access.WRITE} and not caller.operator
    assert (
        caller.subject
        == jwt.decode(issuer.mint([], subject="ann"), options={"verify_signature": False})["oid"]
    )
    without_oid = issuer.mint([ADMIN_ROLE], subject="bob", extra={"oid": None})
    assert authenticator.authenticate(bearer(without_oid)) == Caller("bob", {}, True)
    anonymous = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "exp": int(time.time()) + 600,
        "roles": [ADMIN_ROLE],
    }
    nobody = jwt.encode(anonymous, issuer.private_key, algorithm="RS256", headers={"kid": issuer.kid})
    assert authenticator.authenticate(bearer(nobody)).subject == "", "a token naming no one is no one"


def test_the_scheme_is_case_insensitive_and_the_token_trimmed(
    issuer: TokenIssuer, settings: ApiSettings
) -> None:
    """`bearer`, `BEARER` and extra spaces around the token are accepted (RFC 7235: schemes are case-insensitive)."""
    authenticator = Authenticator(settings)
    token = issuer.mint(["Exports.Read.alpha"])
    for header in (f"bearer {token}", f"BEARER {token}", f"Bearer  {token} "):
        assert authenticator.authenticate({"authorization": header}).grants == {"alpha": Access.READ}


def test_roles_that_are_not_a_list_of_strings_grant_nothing(
    issuer: TokenIssuer, settings: ApiSettings
) -> None:
    """A `roles` claim that is a string, or holds non-strings, grants only its string members."""
    authenticator = Authenticator(settings)
    assert authenticator.authenticate(bearer(issuer.mint([], extra={"roles": ADMIN_ROLE}))) == Caller(
        authenticator.authenticate(bearer(issuer.mint([]))).subject
    )
    mixed = issuer.mint([], extra={"roles": [1, None, "Exports.Read.alpha", ["Exports.Admin"]]})
    assert authenticator.authenticate(bearer(mixed)).grants == {"alpha": Access.READ}


def _401(authenticator: Authenticator, headers: dict[str, str]) -> ApiError:
    error = refusal(authenticator.authenticate, headers)
    assert error.status == 401
    assert error.headers["WWW-Authenticate"].startswith('Bearer realm="signals-export"')
    return error


def test_no_credentials_ask_for_a_token_without_calling_one_invalid(settings: ApiSettings) -> None:
    """No Authorization header, or another scheme: 401 AuthenticationRequired, a challenge without error=."""
    authenticator = Authenticator(settings)
    for headers in ({}, {"authorization": "Basic dXNlcjpwdw=="}, {"authorization": "Bearer "}):
        error = _401(authenticator, headers)
        assert error.code == "AuthenticationRequired"
        assert "error=" not in error.headers["WWW-Authenticate"]
        assert error.message == "An access token is required: send 'Authorization: Bearer <token>'."


def test_refused_tokens_answer_401_invalid_token(
    issuer: TokenIssuer, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong audience or issuer, another key, another algorithm, no expiry or garbage: 401 invalid_token,
    and the log says why (the error's kind), never the token."""
    authenticator = Authenticator(settings)
    stranger = TokenIssuer.generate(issuer=issuer.issuer, audience=issuer.audience)
    claims = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "exp": int(time.time()) + 600,
        "roles": [ADMIN_ROLE],
    }
    for token in (
        issuer.mint([ADMIN_ROLE], audience="api://someone-else"),
        issuer.mint([ADMIN_ROLE], issuer="https://login.evil.example/v2.0"),
        stranger.mint([ADMIN_ROLE]),
        jwt.encode(claims, stranger.private_key, algorithm="RS256", headers={"kid": issuer.kid}),
        jwt.encode(claims, issuer.private_key, algorithm="RS512", headers={"kid": issuer.kid}),
        issuer.mint([ADMIN_ROLE], extra={"exp": None}),
        jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, issuer.private_key, "RS256", {"kid": issuer.kid}
        ),
        issuer.mint([ADMIN_ROLE], extra={"aud": None}),
        "not-a-jwt",
    ):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="signals_export.api.auth"):
            error = _401(authenticator, bearer(token))
        assert (error.code, error.message) == ("InvalidAuthenticationToken", "The access token is not valid.")
        assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]
        (logged,) = caplog.records
        assert (logged.levelno, logged.getMessage()) == (logging.INFO, "access token refused")
        assert logged.reason.endswith("Error") and logged.reason != "NoneType"  # type: ignore[attr-defined]
        assert token not in caplog.text
    wrong_audience = issuer.mint([ADMIN_ROLE], audience="api://someone-else")
    with caplog.at_level(logging.INFO, logger="signals_export.api.auth"):
        _401(authenticator, bearer(wrong_audience))
    assert caplog.records[-1].reason == "InvalidAudienceError"  # type: ignore[attr-defined]


def test_a_token_within_the_clock_skew_is_accepted_and_one_past_it_has_expired(
    issuer: TokenIssuer, settings: ApiSettings
) -> None:
    """Expired a little under a minute ago: still accepted (clocks differ); well past it: 401 ExpiredAuthenticationToken."""
    authenticator = Authenticator(settings)
    now = time.time()
    recent = issuer.mint([ADMIN_ROLE], issued_at=now - 600, lifetime=600 - CLOCK_SKEW_SECONDS / 2)
    assert authenticator.authenticate(bearer(recent)).operator
    old = issuer.mint([ADMIN_ROLE], issued_at=now - 600, lifetime=600 - 2 * CLOCK_SKEW_SECONDS)
    error = _401(authenticator, bearer(old))
    assert (error.code, error.message) == ("ExpiredAuthenticationToken", "The access token has expired.")


def test_a_token_over_the_length_limit_is_refused_before_it_is_read(settings: ApiSettings) -> None:
    """A token longer than 16 KiB answers 'too long'; one of exactly 16 KiB is read (and refused as invalid)."""
    authenticator = Authenticator(settings)
    too_long = _401(authenticator, bearer("a" * (MAX_TOKEN_LENGTH + 1)))
    assert (too_long.code, too_long.message) == (
        "InvalidAuthenticationToken",
        "The access token is too long.",
    )
    at_limit = _401(authenticator, bearer("a" * MAX_TOKEN_LENGTH))
    assert at_limit.message == "The access token is not valid."


def test_without_bearer_settings_every_token_is_refused_and_the_operator_told(
    issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """No AUTH_ISSUER/AUTH_AUDIENCE/keys: a bearer token answers 401 invalid, and the log names the settings."""
    for settings in (
        ApiSettings(),
        ApiSettings(issuers=(issuer.issuer,), audiences=(issuer.audience,)),
        ApiSettings(audiences=(issuer.audience,), jwks=json.dumps(issuer.jwks)),
    ):
        with caplog.at_level(logging.ERROR, logger="signals_export.api.auth"):
            error = _401(Authenticator(settings), bearer(issuer.mint([ADMIN_ROLE])))
        assert (error.code, error.message) == (
            "InvalidAuthenticationToken",
            "The access token cannot be validated.",
        )
        assert [record.getMessage() for record in caplog.records] == [
            "bearer token refused: AUTH_ISSUER, AUTH_AUDIENCE and AUTH_JWKS(_URI) must be set"
        ]
        caplog.clear()


def test_keys_are_read_from_a_jwks_file_and_a_token_without_kid_uses_the_only_key(
    issuer: TokenIssuer, tmp_path: Path
) -> None:
    """AUTH_JWKS may name a file; with a single key, a token that names no key is checked with it."""
    path = issuer.write_jwks(tmp_path / "jwks.json")
    settings = ApiSettings(issuers=(issuer.issuer,), audiences=(issuer.audience,), jwks=str(path))
    claims = {"iss": issuer.issuer, "aud": issuer.audience, "exp": int(time.time()) + 600, "sub": "s"}
    no_kid = jwt.encode({**claims, "roles": ["Exports.Read.alpha"]}, issuer.private_key, algorithm="RS256")
    assert Authenticator(settings).authenticate(bearer(no_kid)) == Caller("s", {"alpha": Access.READ})
    other_kid = jwt.encode(claims, issuer.private_key, algorithm="RS256", headers={"kid": "another"})
    assert _401(Authenticator(settings), bearer(other_kid)).code == "InvalidAuthenticationToken"
    pasted = ApiSettings(
        issuers=(issuer.issuer,), audiences=(issuer.audience,), jwks="\n  " + json.dumps(issuer.jwks)
    )
    assert Authenticator(pasted).authenticate(bearer(no_kid)).subject == "s", (
        "a document pasted with a line break"
    )


def test_settings_given_as_a_callable_are_read_on_first_use(
    issuer: TokenIssuer, settings: ApiSettings
) -> None:
    """The Functions host builds the API before its settings are read: they are read once, when needed."""
    reads: list[int] = []

    def source() -> ApiSettings:
        reads.append(1)
        return settings

    authenticator = Authenticator(source)
    assert reads == []
    for _ in range(2):
        assert authenticator.authenticate(bearer(issuer.mint([ADMIN_ROLE]))).operator
    assert reads == [1]


def test_unreadable_keys_answer_503(
    issuer: TokenIssuer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An AUTH_JWKS file that is missing or not a JWKS: 503 AuthenticationUnavailable, not a 500 or a 401;
    the operator's log says the setting cannot be read, and why."""
    for jwks, reason in (
        (str(tmp_path / "missing.json"), "FileNotFoundError"),
        ('{"keys": "none"}', "PyJWKSetError"),
    ):
        settings = ApiSettings(issuers=(issuer.issuer,), audiences=(issuer.audience,), jwks=jwks)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="signals_export.api.auth"):
            error = refusal(Authenticator(settings).authenticate, bearer(issuer.mint([ADMIN_ROLE])))
        assert (error.status, error.code) == (503, "AuthenticationUnavailable")
        assert error.message == "Access tokens cannot be checked right now."
        (logged,) = caplog.records
        assert (logged.getMessage(), logged.reason) == ("AUTH_JWKS cannot be read", reason)  # type: ignore[attr-defined]


@pytest.fixture
def jwks_server(issuer: TokenIssuer) -> Iterator[tuple[str, list[str]]]:
    """The issuer's JWKS served over HTTP on 127.0.0.1, with a log of the requests it answered."""
    with serving_json(json.dumps(issuer.jwks).encode(), "/keys") as server:
        yield server


def test_keys_from_the_jwks_uri_are_fetched_once(
    issuer: TokenIssuer, jwks_server: tuple[str, list[str]]
) -> None:
    """With AUTH_JWKS_URI, the keys are fetched on the first token and then served from the cache."""
    uri, served = jwks_server
    authenticator = Authenticator(
        ApiSettings(issuers=(issuer.issuer,), audiences=(issuer.audience,), jwks_uri=uri)
    )
    for _ in range(3):
        assert authenticator.authenticate(bearer(issuer.mint(["Exports.Read.alpha"]))).grants == {
            "alpha": Access.READ
        }
    assert served == ["/keys"]


def test_an_unreachable_jwks_uri_answers_503(issuer: TokenIssuer, caplog: pytest.LogCaptureFixture) -> None:
    """The issuer's keys cannot be fetched: 503 (try again), not a 401 that blames the caller's token."""
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    settings = ApiSettings(
        issuers=(issuer.issuer,), audiences=(issuer.audience,), jwks_uri=f"http://127.0.0.1:{port}/keys"
    )
    with caplog.at_level(logging.ERROR, logger="signals_export.api.auth"):
        error = refusal(Authenticator(settings).authenticate, bearer(issuer.mint([ADMIN_ROLE])))
    assert (error.status, error.code) == (503, "AuthenticationUnavailable")
    assert error.message == "Access tokens cannot be checked right now: try again."
    (logged,) = caplog.records
    assert logged.getMessage() == "the issuer's signing keys could not be fetched"
    assert logged.jwks_uri == settings.jwks_uri  # type: ignore[attr-defined]


# -- App Service's principal -----------------------------------------------------------------------------

OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def test_the_principal_header_counts_only_when_trusted(issuer: TokenIssuer, settings: ApiSettings) -> None:
    """X-MS-CLIENT-PRINCIPAL is ignored unless TRUST_APP_SERVICE_AUTH is on; a bearer token comes first."""
    header = {"x-ms-client-principal": principal([("roles", "Exports.Write.alpha"), (OID, "oid-1")])}
    assert _401(Authenticator(settings), header).code == "AuthenticationRequired"
    trusting = Authenticator(ApiSettings(**{**settings.__dict__, "trust_app_service_auth": True}))
    assert trusting.authenticate(header) == Caller("oid-1", {"alpha": Access.WRITE})
    token = issuer.mint(["Exports.Read.beta"], subject="tok")
    assert trusting.authenticate({**header, **bearer(token)}).grants == {"beta": Access.READ}


def test_the_principals_roles_and_subject_come_from_their_claim_types() -> None:
    """Roles from `roles`, the role claim URI or the document's role_typ; the subject: object id, oid, then sub."""
    trusting = Authenticator(ApiSettings(trust_app_service_auth=True))

    def caller(claims: list[tuple[str, str]], **extra: Any) -> Caller:
        return trusting.authenticate({"x-ms-client-principal": principal(claims, **extra)})

    assert caller(
        [(ROLE, "Exports.Read.a"), ("roles", "Exports.Write.b"), ("groups", "Exports.Owner.c")]
    ).grants == {
        "a": Access.READ,
        "b": Access.WRITE,
    }
    assert caller([("appRole", "Exports.Owner.c")], role_typ="appRole").grants == {"c": Access.OWNER}
    assert caller([("sub", "s"), ("oid", "o"), (OID, "object")]).subject == "object"
    assert caller([("sub", "s"), ("oid", "o")]).subject == "o"
    assert caller([("sub", "s")]).subject == "s"
    assert caller([]).subject == ""
    bare = base64.b64encode(json.dumps({"auth_typ": "aad"}).encode()).decode()
    assert trusting.authenticate({"x-ms-client-principal": bare}) == Caller("")


@pytest.mark.parametrize(
    "value",
    [
        "%%% not base64",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b'["a list"]').decode(),
        base64.b64encode(b'{"claims": [{"typ": "roles"}]}').decode(),
        base64.b64encode(b'{"claims": 5}').decode(),
    ],
)
def test_a_damaged_principal_answers_401(value: str) -> None:
    """A principal that is not base64 JSON with claims of typ and val: 401 invalid, never a 500."""
    trusting = Authenticator(ApiSettings(trust_app_service_auth=True))
    error = _401(trusting, {"x-ms-client-principal": value})
    assert (error.code, error.message) == ("InvalidAuthenticationToken", "The client principal is not valid.")


# -- the guard every route runs ----------------------------------------------------------------------------


def guarded_app(settings: ApiSettings) -> FastAPI:
    """Routes behind the API's guard that answer what reached them (the real routes need storage)."""
    router = APIRouter(route_class=GuardedRoute)

    def reached(request: Request) -> dict[str, Any]:
        caller: Caller = request.state.caller
        return {"method": request.method, "subject": caller.subject, **request.path_params}

    for method in ("GET", "PUT", "PATCH", "DELETE", "POST", "HEAD", "OPTIONS"):
        router.add_api_route(EXPORT, reached, methods=[method])
    router.add_api_route("/api/exports", reached, methods=["GET"])

    def broken() -> None:
        raise RuntimeError("a bug of ours, with a secret sig=abc")

    router.add_api_route("/api/broken", broken, methods=["GET"])
    app = FastAPI()
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    app.include_router(router)
    return app


@pytest.fixture
def client(settings: ApiSettings) -> TestClient:
    return TestClient(guarded_app(settings), raise_server_exceptions=False)


def headers_for(issuer: TokenIssuer, *roles: str, **extra: str) -> dict[str, str]:
    token = issuer.mint(list(roles), subject="s", extra={"oid": None})
    return {"Authorization": f"Bearer {token}", **extra}


JSON = {"Content-Type": "application/json"}
URL = "/api/projects/alpha/exports/e1"


def test_the_guard_lets_a_reader_read_and_refuses_their_changes(
    client: TestClient, issuer: TokenIssuer
) -> None:
    """GET, HEAD and OPTIONS pass for a reader; PUT, PATCH, DELETE and POST answer 403."""
    reader = headers_for(issuer, "Exports.Read.alpha")
    got = client.get(URL, headers=reader)
    assert got.status_code == 200 and got.json()["projectId"] == "alpha"
    assert client.head(URL, headers=reader).status_code == 200
    assert client.options(URL, headers=reader).status_code == 200
    for response in (
        client.put(URL, headers={**reader, **JSON}, content=b"{}"),
        client.patch(URL, headers={**reader, **JSON}, content=b"{}"),
        client.delete(URL, headers=reader),
        client.post(URL, headers=reader),
    ):
        assert response.status_code == 403 and response.json()["error"]["code"] == "AuthorizationFailed"


def test_the_guard_lets_a_contributor_change(client: TestClient, issuer: TokenIssuer) -> None:
    """A contributor's PUT, PATCH, DELETE and POST reach the route, with the caller known to it."""
    writer = headers_for(issuer, "Exports.Write.alpha")
    for response in (
        client.put(URL, headers={**writer, **JSON}, content=b"{}"),
        client.patch(URL, headers={**writer, "Content-Type": "application/merge-patch+json"}, content=b"{}"),
        client.delete(URL, headers=writer),
        client.post(URL, headers=writer),
    ):
        assert response.status_code == 200, response.text
        assert response.json()["subject"] == "s"


def test_the_guard_hides_another_projects_exports(client: TestClient, issuer: TokenIssuer) -> None:
    """A role on `alph` or `alpha-b` only: every route of project `alpha` answers 404 ExportNotFound."""
    for roles in (["Exports.Owner.alph"], ["Exports.Owner.alpha-b"], ["Exports.Owner.*"]):
        stranger = headers_for(issuer, *roles)
        for response in (client.get(URL, headers=stranger), client.delete(URL, headers=stranger)):
            assert response.status_code == 404 and response.json()["error"]["code"] == "ExportNotFound"


def test_the_guard_checks_ids_before_grants(client: TestClient, issuer: TokenIssuer) -> None:
    """An id that cannot be one answers 400 naming the id, even to an operator."""
    admin = headers_for(issuer, ADMIN_ROLE)
    project = client.get("/api/projects/-bad/exports/e1", headers=admin)
    assert project.status_code == 400 and project.json()["error"]["code"] == "InvalidProjectId"
    assert project.json()["error"]["target"] == "projectId"
    assert project.json()["error"]["message"] == f"projectId must be {ID_RULE}."
    export = client.get("/api/projects/alpha/exports/-bad", headers=admin)
    assert export.status_code == 400 and export.json()["error"]["code"] == "InvalidExportId"
    assert client.get(URL, headers=admin).status_code == 200


def test_the_guard_authenticates_first(client: TestClient) -> None:
    """No token: 401 before anything else is looked at, the body and the ids included."""
    response = client.put("/api/projects/-bad/exports/e1", content=b"{broken", headers=JSON)
    assert response.status_code == 401 and response.json()["error"]["code"] == "AuthenticationRequired"
    assert client.get("/api/exports").status_code == 401


def test_the_guard_checks_the_media_type_of_changes(client: TestClient, issuer: TokenIssuer) -> None:
    """PUT takes application/json only, PATCH also merge-patch+json (parameters ignored); else 415."""
    writer = headers_for(issuer, "Exports.Write.alpha")
    ok = {
        "PUT": ["application/json", "Application/JSON; charset=utf-8"],
        "PATCH": ["application/merge-patch+json", "application/json"],
    }
    refused = {"PUT": ["application/merge-patch+json", "text/plain", ""], "PATCH": ["text/json", ""]}
    for method, types in ok.items():
        for media_type in types:
            response = client.request(
                method, URL, headers={**writer, "Content-Type": media_type}, content=b"{}"
            )
            assert response.status_code == 200, (method, media_type)
    for method, types in refused.items():
        for media_type in types:
            response = client.request(
                method, URL, headers={**writer, "Content-Type": media_type}, content=b"{}"
            )
            assert response.status_code == 415, (method, media_type)
            error = response.json()["error"]
            assert (error["code"], error["target"]) == ("UnsupportedMediaType", "Content-Type")
            assert error["message"] == f"The request body must be sent as {' or '.join(MEDIA_TYPES[method])}."
    unnamed = client.put(URL, headers=writer, content=b"{}")
    assert "content-type" not in unnamed.request.headers
    assert unnamed.status_code == 415, "a body sent without a media type"


def test_the_guard_refuses_a_declared_body_over_the_limit(client: TestClient, issuer: TokenIssuer) -> None:
    """A Content-Length over 1 MiB answers 413 before the body is read; exactly 1 MiB is taken."""
    writer = headers_for(issuer, "Exports.Write.alpha", **JSON)
    body = b" " * MAX_BODY_BYTES
    assert client.put(URL, headers=writer, content=body).status_code == 200
    response = client.put(URL, headers=writer, content=body + b" ")
    assert response.status_code == 413


def test_an_error_of_ours_behind_the_guard_is_a_plain_500(
    client: TestClient, issuer: TokenIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """A route that fails unexpectedly answers 500 in the Azure shape, without the exception's text; the
    operator's log names the error's type and where it was raised, not its message."""
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/broken", headers=headers_for(issuer, ADMIN_ROLE))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "InternalServerError"
    assert "sig=abc" not in response.text and "sig=abc" not in caplog.text
    (logged,) = [record for record in caplog.records if record.getMessage() == "unexpected error"]
    assert logged.error_type == "RuntimeError" and "broken" in logged.trace  # type: ignore[attr-defined]
