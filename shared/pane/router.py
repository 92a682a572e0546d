"""Serves the pane at `/api/portal/`: its files, its sign-in settings (`config.json`), and the security
headers every one of its responses carries.

Why under `/api/`: in Azure the Functions host routes only `/api/...` to the app's HTTP function
(`AsgiFunctionApp` registers the route `/{*route}` under host.json's `extensions.http.routePrefix`,
which defaults to `api`), and hands the ASGI app the whole path. `/portal` would never reach the app.

Only the files of `static/` are served (listed once, by name: no path from a request touches the file
system), with a strict Content-Security-Policy: scripts, styles and images from this origin only, no
inline script or style, Trusted Types for the DOM's script sinks, and `connect-src` limited to the API
and, when Microsoft sign-in is on, the Entra authority.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from shared.pane.config import EntraSignIn, TrustedIssuers, entra_sign_in
from shared.settings import AppSettings

PORTAL = "/api/portal"
STATIC = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
BRIDGE = "redirect.html"  # MSAL's redirect bridge: framed by the pane's own silent sign-in, no COOP
TRUSTED_TYPES_POLICY = "pane"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def assets() -> dict[str, Asset]:
    """Every file of static/ by its path under it, read once per process."""
    found: dict[str, Asset] = {}
    for path in sorted(STATIC.rglob("*")):
        media_type = MEDIA_TYPES.get(path.suffix)
        if not path.is_file() or media_type is None or path.name.startswith("."):
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        found[path.relative_to(STATIC).as_posix()] = Asset(body, media_type, etag)
    return found


def content_security_policy(entra: EntraSignIn | None, *, framed_by_self: bool = False) -> str:
    """The pane's CSP. The authority is reachable only when Microsoft sign-in is on (MSAL fetches its
    metadata and tokens there, and renews them in a hidden frame)."""
    authority = f" {entra.origin}" if entra else ""
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        f"connect-src 'self'{authority}",
        f"frame-src 'self'{authority}" if entra else "frame-src 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'self'" if framed_by_self else "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        f"trusted-types {TRUSTED_TYPES_POLICY}",
    ]
    return "; ".join(directives)


def security_headers(entra: EntraSignIn | None, name: str = "") -> dict[str, str]:
    """Headers of every pane response. The redirect bridge may be framed by the pane and must not
    carry Cross-Origin-Opener-Policy: COOP would cut it off from the pane
    (https://learn.microsoft.com/entra/msal/javascript/browser/redirect-bridge)."""
    bridge = name == BRIDGE
    headers = {
        "Content-Security-Policy": content_security_policy(entra, framed_by_self=bridge),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "SAMEORIGIN" if bridge else "DENY",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        "Strict-Transport-Security": "max-age=31536000",
        "Cache-Control": "no-cache",
    }
    if not bridge:
        # Popups keep their opener (MSAL watches its sign-in window); nothing else shares the context.
        headers["Cross-Origin-Opener-Policy"] = "same-origin-allow-popups"
    return headers


def sign_in(request: Request) -> EntraSignIn | None:
    """The Microsoft sign-in for what this app's API trusts: its authenticator's issuers and audiences
    (read from the app's state, not imported: the API imports the pane)."""
    authenticator = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        return None
    trusted: TrustedIssuers = authenticator.settings
    return entra_sign_in(trusted.issuers, trusted.audiences, AppSettings.read().portal_client_id)


router = APIRouter(include_in_schema=False)


@router.get(PORTAL)
def portal_root() -> Response:
    """The pane's address without its slash: its relative links need the slash."""
    return RedirectResponse(PORTAL + "/", status_code=308)


@router.get(PORTAL + "/config.json")
def portal_config(request: Request) -> Response:
    """The sign-in the pane offers (Microsoft Entra ID, or none: then a development sign-in, if any)."""
    entra = sign_in(request)
    headers = security_headers(entra) | {"Cache-Control": "no-store"}
    return JSONResponse({"entra": entra.to_json() if entra else None}, headers=headers)


@router.get(PORTAL + "/{name:path}")
def portal_file(name: str, request: Request) -> Response:
    """One file of the pane; the pane itself at `/api/portal/`."""
    name = name or INDEX
    asset = assets().get(name)
    headers = security_headers(sign_in(request) if name.endswith(".html") else None, name)
    if asset is None:
        return Response("Not found", status_code=404, media_type="text/plain", headers=headers)
    headers["ETag"] = asset.etag
    if asset.etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
