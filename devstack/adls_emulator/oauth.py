"""Bearer tokens, checked the way Azure Storage checks them.

Azure Storage takes access tokens of the Entra tenant that holds the account
(https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-azure-active-directory)
for the Storage resource. A token that fails a check is answered 401 InvalidAuthenticationInfo,
"Server failed to authenticate the request. Please refer to the information in the www-authenticate
header.", with a `WWW-Authenticate: Bearer authorization_uri=https://login.microsoftonline.com/<the
account's tenant>/oauth2/authorize resource_id=https://storage.azure.com` challenge and an
`AuthenticationErrorDetail` such as "Issuer validation failed. Issuer did not match." (a recorded
response: microsoft/AzureStorageExplorer#9050; "Audience validation failed. Audience did not match.":
Azure/AzureStor#119; the codes: https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes).
The Storage SDKs read that challenge and ask their credential again for the tenant it names
(`StorageBearerTokenCredentialPolicy.on_challenge`, azure-storage-blob `_shared/policies.py`).

Checks, in the order .NET's token validation makes them: signature (the trusted keys: the local Entra
ID's JWKS), lifetime (`nbf`, `exp`, with its five minutes of clock skew), audience
(`https://storage.azure.com` with or without the slash, or the account's own blob or dfs endpoint),
issuer (v1 `https://sts.windows.net/<tenant>/` or v2 `https://login.microsoftonline.com/<tenant>/v2.0`
of the account's tenant: a token of another tenant fails here).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from .errors import StorageError

CLOCK_SKEW = 300  # Microsoft.IdentityModel's TokenValidationParameters.DefaultClockSkew
STORAGE_RESOURCE = "https://storage.azure.com"
_MESSAGE = (
    "Server failed to authenticate the request. Please refer to the information in the "
    "www-authenticate header."
)


def challenge(tenant: str | None) -> dict[str, str]:
    """The WWW-Authenticate challenge naming the account's tenant (none when it has no tenant)."""
    if tenant is None:
        return {}
    return {
        "WWW-Authenticate": (
            f"Bearer authorization_uri=https://login.microsoftonline.com/{tenant}/oauth2/authorize "
            f"resource_id={STORAGE_RESOURCE}"
        )
    }


def invalid_token(detail: str, tenant: str | None) -> StorageError:
    return StorageError(401, "InvalidAuthenticationInfo", _MESSAGE, headers=challenge(tenant), detail=detail)


@dataclass(frozen=True)
class Caller:
    """Who a valid token speaks for: the principal's object id, its tenant and application id."""

    principal: str
    tenant: str
    application: str


class TrustedKeys:
    """The signing keys the emulator trusts: a JWKS document, or a file holding one that is read again
    when a token names a key it does not know (the local Entra ID made a new key)."""

    def __init__(self, jwks: Mapping[str, Any] | None = None, *, file: Path | None = None) -> None:
        self._file = file
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        if jwks is not None:
            self._add(jwks)
        if file is not None:
            self._reload()

    def _add(self, jwks: Mapping[str, Any]) -> None:
        for entry in jwks.get("keys", []):
            kid = entry.get("kid")
            if isinstance(kid, str):
                self._keys[kid] = jwt.PyJWK.from_dict(dict(entry), algorithm="RS256").key

    def _reload(self) -> None:
        if self._file is None:
            return
        try:
            self._add(json.loads(self._file.read_text()))
        except (OSError, ValueError, jwt.PyJWKError):
            return

    def key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys:
                self._reload()
            return self._keys.get(kid)


def _audience_ok(audience: object, account: str) -> bool:
    if not isinstance(audience, str):
        return False
    if audience.rstrip("/") == STORAGE_RESOURCE:
        return True
    return audience.rstrip("/") in (
        f"https://{account}.blob.core.windows.net",
        f"https://{account}.dfs.core.windows.net",
    )


def verify_bearer(token: str, *, keys: TrustedKeys, tenant: str | None, account: str, now: float) -> Caller:
    """The caller of a valid token; else 401 InvalidAuthenticationInfo with the detail and challenge."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise invalid_token("The access token is not a well-formed JWT.", tenant) from None
    kid = header.get("kid")
    key = keys.key(kid) if isinstance(kid, str) else None
    if key is None or header.get("alg") != "RS256":
        raise invalid_token("Signature validation failed. The signing key is not trusted.", tenant)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidTokenError:
        raise invalid_token("Signature validation failed. Signature is invalid.", tenant) from None
    expires, not_before = claims.get("exp"), claims.get("nbf")
    if not isinstance(expires, int | float):
        raise invalid_token("Lifetime validation failed. The token is missing an Expiration Time.", tenant)
    if now > expires + CLOCK_SKEW:
        raise invalid_token("Lifetime validation failed. The token is expired.", tenant)
    if isinstance(not_before, int | float) and now < not_before - CLOCK_SKEW:
        raise invalid_token("Lifetime validation failed. The token is not yet valid.", tenant)
    if not _audience_ok(claims.get("aud"), account):
        raise invalid_token("Audience validation failed. Audience did not match.", tenant)
    issuers = (
        ()
        if tenant is None
        else (f"https://sts.windows.net/{tenant}/", f"https://login.microsoftonline.com/{tenant}/v2.0")
    )
    if claims.get("iss") not in issuers or claims.get("tid") != tenant:
        raise invalid_token("Issuer validation failed. Issuer did not match.", tenant)
    principal = claims.get("oid")
    if not isinstance(principal, str):
        raise invalid_token("The token has no object id (oid) claim.", tenant)
    application = claims.get("appid") or claims.get("azp") or ""
    return Caller(principal=principal, tenant=str(tenant), application=str(application))
