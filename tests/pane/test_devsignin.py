"""The local host's development sign-in: tokens the API takes, only where the API trusts the
development issuer, and never for a page served from elsewhere."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from devstack.devsignin import PATH, parse, signin_router
from devstack.tokens import TokenIssuer
from shared.api.auth import Access, Authenticator
from shared.api.config import ApiSettings


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer.generate()


def dev_settings(issuer: TokenIssuer) -> dict[str, str]:
    return {
        "AUTH_ISSUER": issuer.issuer,
        "AUTH_AUDIENCE": issuer.audience,
        "AUTH_JWKS": json.dumps(issuer.jwks),
    }


def app_for(settings: Mapping[str, str], issuer: TokenIssuer | None) -> TestClient:
    app = FastAPI()
    app.include_router(signin_router(lambda: settings, lambda: issuer))
    return TestClient(app, base_url="http://localhost:7071")


def test_the_development_sign_in_issues_a_token_the_api_takes_with_the_chosen_role(
    issuer: TokenIssuer,
) -> None:
    """A reader of one project gets read access to it and nothing else; the answer is never cached."""
    settings = dev_settings(issuer)
    with app_for(settings, issuer) as client:
        assert client.get(PATH).json() == {"roles": ["reader", "contributor", "owner", "admin"]}
        answer = client.post(PATH, json={"project": "alpha", "role": "reader"})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    authenticator = Authenticator(ApiSettings.from_env(settings))
    caller = authenticator.authenticate({"authorization": f"Bearer {answer.json()['accessToken']}"})
    assert caller.access("alpha") is Access.READ
    assert caller.access("beta") is None


def test_it_is_off_when_the_api_trusts_another_issuer(issuer: TokenIssuer) -> None:
    """A local host pointed at a real tenant (AUTH_ISSUER from the environment) issues nothing: 404."""
    settings = {**dev_settings(issuer), "AUTH_ISSUER": "https://login.microsoftonline.com/tenant/v2.0"}
    with app_for(settings, issuer) as client:
        assert client.get(PATH).status_code == 404
        assert client.post(PATH, json={"project": "alpha", "role": "owner"}).status_code == 404
    with app_for(dev_settings(issuer), None) as client:
        assert client.get(PATH).status_code == 404


def test_it_refuses_what_another_site_could_make_a_browser_send(issuer: TokenIssuer) -> None:
    """A rebound DNS name (Host not loopback), a foreign Origin, a form post: refused, no token."""
    with app_for(dev_settings(issuer), issuer) as client:
        body = {"project": "alpha", "role": "owner"}
        assert client.post(PATH, json=body, headers={"Host": "evil.example:7071"}).status_code == 403
        assert client.post(PATH, json=body, headers={"Origin": "https://evil.example"}).status_code == 403
        form = client.post(
            PATH,
            content=b"project=alpha&role=owner",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
        same = client.post(PATH, json=body, headers={"Origin": "http://localhost:7071"})
        assert same.status_code == 200


def test_a_bad_request_says_what_is_wrong_without_quoting_it(issuer: TokenIssuer) -> None:
    """Unknown role, project id breaking the id rule, not JSON: 400 naming the rule, not the value."""
    with app_for(dev_settings(issuer), issuer) as client:
        for body in ({"project": "<b>x</b>", "role": "reader"}, {"project": "alpha", "role": "god"}, []):
            answer = client.post(PATH, json=body)
            assert answer.status_code == 400
            assert "<b>" not in answer.text and "god" not in answer.text
        assert (
            client.post(PATH, content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
        )
        admin = client.post(PATH, json={"role": "admin"})
        assert admin.status_code == 200 and admin.json()["roles"] == ["Exports.Admin"]


def outcome(body: bytes) -> tuple[str, str] | HTTPException:
    try:
        return parse(body)
    except HTTPException as refused:
        return refused


@given(st.binary(max_size=200))
def test_any_body_is_parsed_or_refused_with_a_400(body: bytes) -> None:
    """Whatever a client sends: a valid project and role, or a 400 whose message quotes nothing."""
    result = outcome(body)
    if isinstance(result, HTTPException):
        assert result.status_code == 400
        assert str(result.detail).startswith(
            ("Send a JSON object", "The role must be", "The project must be")
        )
        return
    project, role = result
    assert role in {"reader", "contributor", "owner", "admin"}
    assert project or role == "admin"
