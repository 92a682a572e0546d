"""The pane as the app serves it: under /api/portal/ (the Functions host routes only /api/...), every
file from the package, with strict security headers, and the Microsoft sign-in the API's settings allow."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import azure.functions as func
import pytest
from fastapi.testclient import TestClient

from shared.api import create_api
from shared.api.config import ApiSettings
from shared.pane.router import PORTAL, STATIC, assets
from tests.support import registered, registered_functions

ROOT = Path(__file__).resolve().parents[2]
TENANT = "8c2f1c9e-4b7a-4f1e-9d3a-2b6f0e5a7c11"
CLIENT = "5d1e0a2b-9c3f-4e6d-8a7b-1f2e3d4c5b6a"
ENTRA = ApiSettings(
    issuers=(f"https://login.microsoftonline.com/{TENANT}/v2.0",),
    audiences=(CLIENT, "api://signals-export"),
    jwks_uri=f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys",
)


def client(settings: ApiSettings | None = None) -> TestClient:
    def no_runtime() -> object:
        raise AssertionError("the pane needs no runtime")

    return TestClient(create_api(no_runtime, settings=settings or ApiSettings()))  # type: ignore[arg-type]


def directives(policy: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in policy.split(";"))}


def test_the_pane_is_served_under_the_functions_route_prefix() -> None:
    """The HTTP function takes every path under host.json's route prefix (none set: `api`, Azure's
    default), so the pane's `/api/portal/` reaches the app in Azure; `/portal` never would."""
    http = registered_functions()["management_api"]
    trigger = next(b for b in http.get_bindings() if b.type == "httpTrigger")
    assert trigger.route == "/{*route}"
    prefix = (
        json.loads((ROOT / "host.json").read_text())
        .get("extensions", {})
        .get("http", {})
        .get("routePrefix", "api")
    )
    assert f"/{prefix}/portal" == PORTAL


def test_the_functions_host_serves_the_pane_with_its_headers() -> None:
    """Through the Functions ASGI adapter, as in Azure: the pane's files with their headers, and a
    redirect to the slash. (Only files that do not read the API's settings: the function app's
    authenticator keeps the first settings it reads, which tests/api/test_function_app.py sets.)"""
    function = registered("management_api")

    def call(url: str) -> func.HttpResponse:
        response = asyncio.run(function(func.HttpRequest(method="GET", url=url, headers={}, body=b""), None))
        assert isinstance(response, func.HttpResponse)
        return response

    script = call("https://app.example/api/portal/app.js")
    assert script.status_code == 200 and script.mimetype.startswith("text/javascript")
    assert b"function render()" in script.get_body()
    assert "script-src 'self'" in script.headers["Content-Security-Policy"]
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert call("https://app.example/api/portal").headers["Location"] == "/api/portal/"
    assert call("https://app.example/api/portal/missing.js").status_code == 404


def test_every_response_carries_a_strict_content_security_policy_and_security_headers() -> None:
    """No inline script or style, Trusted Types, no framing, nothing to other hosts without Microsoft
    sign-in; nosniff, no referrer, and the opener policy on the page."""
    with client() as pane:
        for path in ("/", "/app.js", "/style.css", "/config.json", "/missing.js"):
            response = pane.get(PORTAL + path)
            policy = directives(response.headers["Content-Security-Policy"])
            assert policy["default-src"] == "'none'"
            assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
            assert policy["connect-src"] == "'self'" and policy["frame-src"] == "'none'"
            assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
            assert policy["require-trusted-types-for"] == "'script'" and policy["trusted-types"] == "pane"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"
        assert pane.get(PORTAL + "/config.json").headers["Cache-Control"] == "no-store"


def test_with_microsoft_sign_in_the_authority_is_the_only_other_host() -> None:
    """config.json offers MSAL the API's client id, tenant and scope; the CSP opens the authority only."""
    with client(ENTRA) as pane:
        config = pane.get(PORTAL + "/config.json").json()
        assert config == {
            "entra": {
                "clientId": CLIENT,
                "authority": f"https://login.microsoftonline.com/{TENANT}",
                "scopes": [f"{CLIENT}/.default"],
            }
        }
        policy = directives(pane.get(PORTAL + "/").headers["Content-Security-Policy"])
        assert policy["connect-src"] == "'self' https://login.microsoftonline.com"
        assert policy["frame-src"] == "'self' https://login.microsoftonline.com"
        bridge = pane.get(PORTAL + "/redirect.html")
        assert "Cross-Origin-Opener-Policy" not in bridge.headers  # MSAL's redirect bridge needs none
        assert directives(bridge.headers["Content-Security-Policy"])["frame-ancestors"] == "'self'"


def test_only_the_packages_files_are_served(tmp_path: Path) -> None:
    """Unknown names, other folders and encoded climbs answer 404; a known file's ETag answers 304."""
    with client() as pane:
        for path in (
            "/../app.py",
            "/%2e%2e/router.py",
            "/..%2Frouter.py",
            "/router.py",
            "/static/app.js",
            "/.hidden",
        ):
            assert pane.get(PORTAL + path).status_code == 404, path
        first = pane.get(PORTAL + "/app.js")
        assert (
            pane.get(PORTAL + "/app.js", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
        )
    assert set(assets()) >= {"index.html", "app.js", "redirect.html", "vendor/msal-browser.min.js"}
    assert not any(name.endswith(".py") for name in assets())


def test_the_pane_has_no_inline_script_or_style_and_never_writes_markup() -> None:
    """What the CSP would refuse is not there to refuse: no inline script, handler or style attribute
    in the pages, and no script sets markup from strings (text goes in as text nodes)."""
    for page in STATIC.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page.name
        assert not re.search(r"\s(on[a-z]+|style)\s*=", html), page.name
        assert "<style" not in html, page.name
    for script in [*STATIC.glob("*.js"), *STATIC.glob("views/*.js")]:
        code = script.read_text()
        sinks = re.findall(
            r"\.(?:innerHTML|outerHTML|insertAdjacentHTML)\b|document\.write|\beval\(|new Function", code
        )
        assert sinks == [], script.name
        assert not re.search(r"(localStorage|sessionStorage)\s*[.\[]", code), script.name


@pytest.mark.parametrize(
    ("vendored", "built"),
    [
        ("msal-browser.min.js", "lib/msal-browser.min.js"),
        ("msal-redirect-bridge.min.js", "lib/redirect-bridge/msal-redirect-bridge.min.js"),
        ("msal-browser.LICENSE.txt", "LICENSE"),
    ],
)
def test_the_vendored_msal_is_the_pinned_npm_packages_build(vendored: str, built: str) -> None:
    """The pane's copy of MSAL for the browser is byte for byte the pinned package's (scripts/pane-vendor
    copies it; `npm ci` installs the version package-lock.json pins, offline from the npm cache)."""
    package = ROOT / "node_modules" / "@azure" / "msal-browser"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/@azure/msal-browser"]["version"]
    assert json.loads((ROOT / "package.json").read_text())["devDependencies"]["@azure/msal-browser"] == pinned
    installed = json.loads((package / "package.json").read_text())["version"]
    assert installed == pinned, "node_modules is stale: run npm ci"
    assert (STATIC / "vendor" / vendored).read_bytes() == (package / built).read_bytes()
    if vendored.endswith(".js"):
        assert (STATIC / "vendor" / vendored).read_text().startswith(f"/*! @azure/msal-browser v{pinned} ")


def test_the_pane_modules_parse_as_javascript() -> None:
    """Every module of the pane is valid JavaScript for Node.js's parser (a syntax error would leave
    the customer with an empty page)."""
    scripts = [*STATIC.glob("*.js"), *STATIC.glob("views/*.js")]
    for script in scripts:
        kind = "commonjs" if script.name == "redirect.js" else "module"  # redirect.js: a classic script
        checked = subprocess.run(
            ["node", "--check", f"--input-type={kind}"],
            input=script.read_bytes(),
            capture_output=True,
            check=False,
        )
        assert checked.returncode == 0, (script.name, checked.stderr.decode())
