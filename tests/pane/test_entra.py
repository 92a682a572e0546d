"""Microsoft sign-in in a real browser, with the vendored MSAL for the browser and the API's Entra
settings, against a stand-in for Microsoft Entra ID: every request to the login host is answered by the
test inside the browser, so nothing leaves the machine, and the whole flow runs as in Azure (popup,
authorization code with PKCE, redirect bridge, token redemption, the API checking the token)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Request, Route, expect

from devstack.host import LocalHost, free_port
from devstack.tokens import TokenIssuer
from shared.api import create_api
from shared.api.config import ApiSettings
from tests.pane.conftest import Watch, context_for

pytestmark = pytest.mark.integration

TENANT = "8c2f1c9e-4b7a-4f1e-9d3a-2b6f0e5a7c11"
CLIENT = "5d1e0a2b-9c3f-4e6d-8a7b-1f2e3d4c5b6a"
LOGIN = "https://login.microsoftonline.com"
ISSUER = f"{LOGIN}/{TENANT}/v2.0"
USER_OID = "0a1b2c3d-0000-4000-8000-00000000000a"


@dataclass
class EntraApp:
    """The app (API and pane) configured for a Microsoft Entra tenant, served on a port of its own."""

    url: str
    tokens: TokenIssuer


@pytest.fixture(scope="module")
def entra_app(host: LocalHost) -> Iterator[EntraApp]:
    tokens = TokenIssuer.generate(issuer=ISSUER, audience=CLIENT)
    settings = ApiSettings(issuers=(ISSUER,), audiences=(CLIENT,), jwks=json.dumps(tokens.jwks))
    port = free_port()
    config = uvicorn.Config(
        create_api(lambda: host.runtime, settings=settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    yield EntraApp(f"http://127.0.0.1:{port}", tokens)
    server.should_exit = True
    thread.join(timeout=10)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class StandIn:
    """Answers what MSAL asks the login host: metadata, the authorization (a code for the pane's
    redirect bridge) and the token redemption (an access token signed by the tenant's stand-in key)."""

    tokens: TokenIssuer
    project: str
    lifetime: int = 3600  # expires_in of the access tokens
    renew: bool = True  # whether a refresh token is redeemed (else: invalid_grant, as when it expired)
    authorize: dict[str, str] = field(default_factory=dict)
    redeem: dict[str, str] = field(default_factory=dict)
    refreshed: int = 0

    def metadata(self) -> dict[str, Any]:
        base = f"{LOGIN}/{TENANT}"
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "aud": CLIENT,
            "iss": ISSUER,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "nonce": nonce,
            "oid": USER_OID,
            "sub": "ada",
            "tid": TENANT,
            "name": "Ada Customer",
            "preferred_username": "ada@contoso.example",
            "ver": "2.0",
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": self.tokens.kid}
        return ".".join(
            [b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), b64url(b"sig")]
        )

    def handle(self, route: Route, request: Request) -> None:
        url = urlsplit(request.url)
        cors = {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Headers": "*",
            "Access-Control-Allow-Methods": "GET, POST",
        }
        if request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors)
        elif url.path.endswith("/.well-known/openid-configuration"):
            route.fulfill(json=self.metadata(), headers=cors)
        elif url.path.endswith("/discovery/instance"):
            route.fulfill(
                json={
                    "tenant_discovery_endpoint": f"{ISSUER}/.well-known/openid-configuration",
                    "api-version": "1.1",
                    "metadata": [
                        {
                            "preferred_network": "login.microsoftonline.com",
                            "preferred_cache": "login.windows.net",
                            "aliases": ["login.microsoftonline.com", "login.windows.net"],
                        }
                    ],
                },
                headers=cors,
            )
        elif url.path.endswith("/oauth2/v2.0/authorize"):
            asked = {k: v[0] for k, v in parse_qs(url.query).items()}
            if asked.get("prompt") == "none" and not self.renew:  # MSAL's silent try in a hidden frame
                answer = f"error=login_required&error_description=AADSTS50058&state={asked['state']}"
            else:
                self.authorize = asked
                client_info = b64url(json.dumps({"uid": USER_OID, "utid": TENANT}).encode())
                answer = f"code=the-code&client_info={client_info}&state={asked['state']}"
            route.fulfill(status=302, headers={"Location": f"{asked['redirect_uri']}#{answer}"})
        elif url.path.endswith("/oauth2/v2.0/token"):
            form = {k: v[0] for k, v in parse_qs(request.post_data or "").items()}
            if form.get("grant_type") == "refresh_token":
                self.refreshed += 1
                if not self.renew:
                    refused = {"error": "invalid_grant", "error_description": "AADSTS700082: expired"}
                    route.fulfill(status=400, json=refused, headers=cors)
                    return
            else:
                self.redeem = form
            access = self.tokens.mint(
                [f"Exports.Write.{self.project}"], subject="ada", lifetime=self.lifetime
            )
            route.fulfill(
                json={
                    "token_type": "Bearer",
                    "scope": f"{CLIENT}/.default",
                    "expires_in": self.lifetime,
                    "ext_expires_in": self.lifetime,
                    "access_token": access,
                    "refresh_token": "the-refresh-token",
                    "id_token": self.id_token(self.authorize["nonce"]),
                    "client_info": b64url(json.dumps({"uid": USER_OID, "utid": TENANT}).encode()),
                },
                headers=cors,
            )
        else:
            route.fulfill(status=404, headers=cors, body="")


def signed_in_with_microsoft(browser: Browser, entra_app: EntraApp, watch: Watch, stand_in: StandIn) -> Page:
    """The pane signed in through the popup; the login host answered by the stand-in."""
    context = context_for(browser, entra_app.url, watch)
    context.route(f"{LOGIN}/**", stand_in.handle)  # after the guard: it answers the login host first
    page = context.new_page()
    page.goto(entra_app.url + "/api/portal/")
    expect(page.get_by_role("heading", name="Development sign-in")).to_have_count(0)
    with page.expect_popup() as popup:
        page.get_by_role("button", name="Sign in with Microsoft").click()
    popup.value.wait_for_event("close")
    return page


def test_signing_in_with_microsoft_runs_the_msal_popup_flow_and_the_api_takes_its_token(
    browser: Browser, entra_app: EntraApp, watch: Watch
) -> None:
    """The pane asks the API's tenant for the API's scope as the API's client, with PKCE, lands on the
    redirect bridge, redeems the code, and lists the project's exports with the token; no token is
    kept in the browser's storage, and no request leaves the machine."""
    project = "entra-project"
    stand_in = StandIn(entra_app.tokens, project)
    page = signed_in_with_microsoft(browser, entra_app, watch, stand_in)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Exports of {project}")
    expect(page.get_by_text("This project has no exports yet.")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("Ada Customer")

    asked = stand_in.authorize
    assert asked["client_id"] == CLIENT
    assert asked["redirect_uri"] == entra_app.url + "/api/portal/redirect.html"
    assert f"{CLIENT}/.default" in asked["scope"].split()
    assert asked["code_challenge_method"] == "S256" and asked["response_mode"] == "fragment"
    assert stand_in.redeem["code"] == "the-code" and stand_in.redeem["code_verifier"]
    assert stand_in.refreshed == 0
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0  # MSAL's cache: memory
    assert "the-code" not in page.url
    page.context.close()
    watch.assert_clean()


def test_a_token_about_to_expire_is_renewed_silently_and_an_ended_sign_in_says_so(
    browser: Browser, entra_app: EntraApp, watch: Watch
) -> None:
    """A token close to its end is renewed with MSAL's refresh token before the API is called; when
    the tenant refuses to renew it, the pane signs out and says why in plain words."""
    project = "entra-renewal"
    stand_in = StandIn(entra_app.tokens, project, lifetime=60)
    page = signed_in_with_microsoft(browser, entra_app, watch, stand_in)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Exports of {project}")
    assert stand_in.refreshed >= 1

    stand_in.renew = False
    page.get_by_role("button", name="Refresh").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.get_by_text("Your sign-in has ended. Sign in again to go on.")).to_be_visible()
    page.context.close()
    watch.assert_clean()
