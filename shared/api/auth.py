"""Who is calling, and what they may do to which projects.

A caller proves who they are with either
- a bearer token from Microsoft Entra ID: an RS256 JWT whose issuer (`AUTH_ISSUER`), audience
  (`AUTH_AUDIENCE`), lifetime and signature (keys from `AUTH_JWKS_URI`, fetched and cached, or given
  directly in `AUTH_JWKS`) are checked; or
- App Service Authentication's `X-MS-CLIENT-PRINCIPAL` header (base64 JSON with `claims`), accepted
  only when `TRUST_APP_SERVICE_AUTH` is true: App Service strips forged ones only when Easy Auth is on.

Grants come from the app roles in the `roles` claim:

| role | grants |
| --- | --- |
| `Exports.Read.<projectId>` | reader: list and read the project's exports, and their health |
| `Exports.Write.<projectId>` | contributor: reader, and create, change, disable, enable, resume, delete |
| `Exports.Owner.<projectId>` | owner: everything a contributor may (the level is kept for role management) |
| `Exports.Admin` | operator: owner of every project (the only way to every project: `*` is not a project) |

A project the caller has no role for does not exist for them: its exports answer 404, never 403.
A reader's change answers 403.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import httpx
import jwt

from shared.api.config import ApiSettings
from shared.api.errors import ApiError, not_found
from shared.api.rules import valid_id

log = logging.getLogger("signals_export.api.auth")

ADMIN_ROLE = "Exports.Admin"
PRINCIPAL_HEADER = "x-ms-client-principal"
ALGORITHMS = ["RS256"]
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_LENGTH = 16 * 1024
_ROLE_CLAIM_TYPES = {"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}
_SUBJECT_CLAIM_TYPES = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid", "sub")
_REALM = 'Bearer realm="signals-export"'


class Access(IntEnum):
    READ = 1
    WRITE = 2
    OWNER = 3


_LEVELS = {"Read": Access.READ, "Write": Access.WRITE, "Owner": Access.OWNER}


def grants_from_roles(roles: Iterable[str]) -> tuple[dict[str, Access], bool]:
    """The project grants and the operator flag that a caller's app roles give."""
    grants: dict[str, Access] = {}
    operator = False
    for role in roles:
        if role == ADMIN_ROLE:
            operator = True
            continue
        parts = role.split(".", 2)
        if len(parts) != 3 or parts[0] != "Exports" or parts[1] not in _LEVELS:
            continue
        project, level = parts[2], _LEVELS[parts[1]]
        if not valid_id(project):  # `*` included: every project only through Exports.Admin
            continue
        grants[project] = max(grants.get(project, level), level)
    return grants, operator


@dataclass(frozen=True)
class Caller:
    """An authenticated caller and their grants."""

    subject: str
    grants: Mapping[str, Access] = field(default_factory=dict)
    operator: bool = False

    @classmethod
    def from_roles(cls, subject: str, roles: Iterable[str]) -> Caller:
        grants, operator = grants_from_roles(roles)
        return cls(subject, grants, operator)

    def access(self, project_id: str) -> Access | None:
        return Access.OWNER if self.operator else self.grants.get(project_id)

    def projects(self) -> frozenset[str] | None:
        """The projects the caller sees; None: every project."""
        return None if self.operator else frozenset(self.grants)

    def require(self, project_id: str, needed: Access, export_id: str | None = None) -> None:
        """Refuse with 404 when the project is not the caller's, 403 when the grant is too low."""
        have = self.access(project_id)
        if have is None:
            if export_id is not None:
                raise not_found(project_id, export_id)
            raise ApiError(
                404,
                "ProjectNotFound",
                "The project was not found (or you have no role on it).",
                target="projectId",
            )
        if have < needed:
            raise ApiError(
                403,
                "AuthorizationFailed",
                f"The caller may read project '{project_id}' but not change it: a contributor role "
                f"(Exports.Write.{project_id}) is needed.",
            )


def unauthorized(code: str, message: str, *, invalid: bool = True) -> ApiError:
    challenge = f'{_REALM}, error="invalid_token"' if invalid else _REALM
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


class LocalKeys:
    """Signing keys given directly: a JWKS document, or the path of a file holding one."""

    def __init__(self, source: str) -> None:
        text = source if source.lstrip().startswith("{") else Path(source).read_text()
        self._keys = jwt.PyJWKSet.from_dict(json.loads(text)).keys

    def key_for(self, token: str) -> jwt.PyJWK:
        key = _matching(self._keys, jwt.get_unverified_header(token).get("kid"))
        if key is None:
            raise jwt.InvalidTokenError("no signing key matches the token's kid")
        return key


class KeysUnavailable(Exception):
    """The issuer's signing keys could not be fetched (its endpoint did not answer with a JWKS)."""


class RemoteKeys:
    """Signing keys from the issuer's JWKS endpoint (httpx), kept for an hour. A token whose kid is not
    among them fetches them again (the issuer rolled its keys), at most once a minute: tokens with
    made-up kids cannot turn every request into a fetch."""

    LIFESPAN = 3600.0
    REFETCH_AFTER = 60.0
    MAX_BYTES = 1024 * 1024

    def __init__(self, uri: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._uri = uri
        self._clock = clock
        self._keys: list[jwt.PyJWK] = []
        self._fetched = -float("inf")
        self._lock = threading.Lock()

    def key_for(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        with self._lock:
            age = self._clock() - self._fetched
            key = _matching(self._keys, kid) if age < self.LIFESPAN else None
            if key is None and age >= self.REFETCH_AFTER:
                self._keys, self._fetched = self._fetch(), self._clock()
                key = _matching(self._keys, kid)
        if key is None:
            raise jwt.InvalidTokenError("no signing key matches the token's kid")
        return key

    def _fetch(self) -> list[jwt.PyJWK]:
        try:
            with httpx.stream("GET", self._uri, timeout=10.0, follow_redirects=False) as response:
                response.raise_for_status()
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.MAX_BYTES:
                        raise KeysUnavailable("the JWKS document is over 1 MiB")
            return list(jwt.PyJWKSet.from_dict(json.loads(body)).keys)
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as error:
            raise KeysUnavailable(type(error).__name__) from None


def _matching(keys: list[jwt.PyJWK], kid: object) -> jwt.PyJWK | None:
    for key in keys:
        if key.key_id == kid or (kid is None and len(keys) == 1):
            return key
    return None


class Authenticator:
    """Turns a request's headers into a Caller, or refuses with 401."""

    def __init__(self, settings: ApiSettings | Callable[[], ApiSettings]) -> None:
        self._settings_source = settings
        self._settings: ApiSettings | None = settings if isinstance(settings, ApiSettings) else None
        self._keys: LocalKeys | RemoteKeys | None = None
        self._lock = threading.Lock()

    @property
    def settings(self) -> ApiSettings:
        if self._settings is None:
            source = self._settings_source
            assert callable(source)
            self._settings = source()
        return self._settings

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        settings = self.settings
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else ""
        principal = headers.get(PRINCIPAL_HEADER)
        if bearer and settings.bearer_configured:
            return self._from_token(bearer, settings)
        if principal and settings.trust_app_service_auth:
            return _from_principal(principal)
        if bearer:
            log.error("bearer token refused: AUTH_ISSUER, AUTH_AUDIENCE and AUTH_JWKS(_URI) must be set")
            raise unauthorized("InvalidAuthenticationToken", "The access token cannot be validated.")
        raise unauthorized(
            "AuthenticationRequired",
            "An access token is required: send 'Authorization: Bearer <token>'.",
            invalid=False,
        )

    def _from_token(self, token: str, settings: ApiSettings) -> Caller:
        if len(token) > MAX_TOKEN_LENGTH:
            raise unauthorized("InvalidAuthenticationToken", "The access token is too long.")
        keys = self._key_source(settings)
        try:
            key = keys.key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=list(settings.audiences),
                issuer=list(settings.issuers),
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("ExpiredAuthenticationToken", "The access token has expired.") from None
        except KeysUnavailable:
            log.error("the issuer's signing keys could not be fetched", extra={"jwks_uri": settings.jwks_uri})
            raise ApiError(
                503, "AuthenticationUnavailable", "Access tokens cannot be checked right now: try again."
            ) from None
        except (jwt.PyJWTError, ValueError) as error:
            log.info("access token refused", extra={"reason": type(error).__name__})
            raise unauthorized("InvalidAuthenticationToken", "The access token is not valid.") from None
        subject = str(claims.get("oid") or claims.get("sub") or "")
        roles = claims.get("roles") or []
        if not isinstance(roles, list):
            roles = []
        return Caller.from_roles(subject, (r for r in roles if isinstance(r, str)))

    def _key_source(self, settings: ApiSettings) -> LocalKeys | RemoteKeys:
        with self._lock:
            if self._keys is None:
                try:
                    self._keys = LocalKeys(settings.jwks) if settings.jwks else RemoteKeys(settings.jwks_uri)
                except (OSError, ValueError, jwt.PyJWTError) as error:
                    log.error("AUTH_JWKS cannot be read", extra={"reason": type(error).__name__})
                    raise ApiError(
                        503, "AuthenticationUnavailable", "Access tokens cannot be checked right now."
                    ) from None
            return self._keys


def _from_principal(raw: str) -> Caller:
    """The caller App Service Authentication vouches for."""
    try:
        document: Any = json.loads(base64.b64decode(raw, validate=False))
        claims = [(str(c["typ"]), str(c["val"])) for c in document.get("claims", [])]
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        raise unauthorized("InvalidAuthenticationToken", "The client principal is not valid.") from None
    role_types = _ROLE_CLAIM_TYPES | {str(document.get("role_typ") or "roles")}
    roles = [value for kind, value in claims if kind in role_types]
    by_type = dict(claims)
    subject = next((by_type[t] for t in _SUBJECT_CLAIM_TYPES if t in by_type), "")
    return Caller.from_roles(subject, roles)
