"""The development sign-in: the local host's stand-in for Microsoft Entra ID, for the pane.

- `GET /_local/signin`: 200 with the roles on offer when the API trusts the development issuer, else
  404 (the pane then offers no development sign-in).
- `POST /_local/signin` with `{"project": "<id>", "role": "reader|contributor|owner|admin"}`: a
  development access token (`devstack.tokens`) for that project and role, in the body only.

It exists only on the local host (the development routes, never the Functions app), and answers only
while the API's `AUTH_ISSUER` and `AUTH_AUDIENCE` are the development issuer's: a host pointed at a real
tenant issues nothing. Like `scripts/run token`, it trusts whoever can reach the host, so it also
refuses what a web page elsewhere could send: a Host that is not a loopback name (DNS rebinding), an
Origin other than the host's own, and a body that is not JSON (a cross-site form cannot send one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from devstack.tokens import ROLE_LEVELS, TokenIssuer, roles_for
from shared.api.rules import ID_RULE, valid_id
from shared.settings import AppSettings

PATH = "/_local/signin"
ROLES = (*ROLE_LEVELS, "admin")
LIFETIME_SECONDS = 3600
LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}
_NO_STORE = {"Cache-Control": "no-store"}


def available(settings: Mapping[str, str], issuer: TokenIssuer | None) -> bool:
    """Whether the API trusts the development issuer's tokens (its AUTH_ISSUER and AUTH_AUDIENCE)."""
    if issuer is None:
        return False
    trusted = AppSettings.read(settings)
    return issuer.issuer in trusted.auth_issuers and issuer.audience in trusted.auth_audiences


def check_origin(request: Request) -> None:
    """Refuse requests that a page served from elsewhere could make the browser send."""
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name.lower() not in LOOPBACK:
        raise HTTPException(403, "The development sign-in answers only on localhost or 127.0.0.1.")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{host}":
        raise HTTPException(403, "The development sign-in answers only the pane of this host.")


def parse(body: bytes) -> tuple[str, str]:
    """The project and role asked for, or a 400 that says which is wrong (never quoting them)."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        raise HTTPException(400, "Send a JSON object with a project and a role.") from None
    if not isinstance(document, dict):
        raise HTTPException(400, "Send a JSON object with a project and a role.")
    role = document.get("role", "contributor")
    project = document.get("project", "")
    if role not in ROLES:
        raise HTTPException(400, f"The role must be one of: {', '.join(ROLES)}.")
    if role != "admin" and not (isinstance(project, str) and valid_id(project)):
        raise HTTPException(400, f"The project must be {ID_RULE}.")
    return (project if isinstance(project, str) else ""), role


def signin_router(
    settings: Callable[[], Mapping[str, str]], issuer: Callable[[], TokenIssuer | None]
) -> APIRouter:
    """The sign-in routes, on the host's settings and development issuer (both read per request)."""
    router = APIRouter()

    def require_available() -> TokenIssuer:
        current = issuer()
        if current is None or not available(settings(), current):
            raise HTTPException(
                404, "The development sign-in is off: the API does not trust the development issuer."
            )
        return current

    @router.get(PATH)
    async def offer(request: Request) -> Any:
        check_origin(request)
        require_available()
        return JSONResponse({"roles": list(ROLES)}, headers=_NO_STORE)

    @router.post(PATH)
    async def sign_in(request: Request) -> Any:
        check_origin(request)
        current = require_available()
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise HTTPException(415, "Send the sign-in as application/json.")
        project, role = parse(await request.body())
        roles = roles_for([project] if project else [], role)
        subject = f"dev-{role}"
        token = current.mint(roles, subject=subject, lifetime=LIFETIME_SECONDS)
        expires = int(time.time()) + LIFETIME_SECONDS
        return JSONResponse(
            {"accessToken": token, "expiresOn": expires, "roles": roles, "subject": subject},
            headers=_NO_STORE,
        )

    return router
