"""Who sent a request and whether they may: SharedKey, bearer tokens with Azure roles, and SAS.

One request carries one of: `Authorization: SharedKey ...` (`auth.py`), `Authorization: Bearer ...`
(`oauth.py`, then the principal's role assignments, `access.py`), or a SAS in the query (`sas.py`,
then its permissions, and for a user delegation SAS also the roles of the principal who got the key).
A request with neither is checked as SharedKey, which refuses it.

Failures, as the service answers them: a valid token whose principal has no role that grants the
operation at the account or the filesystem gets 403 AuthorizationPermissionMismatch (so does a SAS
without the permission); SharedKey or a key-signed SAS on an account with shared-key access off gets
403 KeyBasedAuthenticationNotPermitted (recorded responses: microsoft/AzureStorageExplorer#8090 on
dfs, Azure/AI-Landing-Zones#64 on blob); a bearer token over plain HTTP gets 403 AuthenticationFailed
"Authentication scheme Bearer is not allowed with HTTP." (Azurite's wording,
src/blob/authentication/BlobTokenAuthenticator.ts; the SDKs never send one over HTTP).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Protocol
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .access import NEEDS, AccessRegistry, Need
from .auth import AccountRegistry, verify_shared_key
from .errors import error
from .oauth import Caller, TrustedKeys, verify_bearer
from .protocol import Request, Response
from .sas import delegation_key, is_sas, parse_time, verify_sas

MAX_DELEGATION_KEY_DAYS = (
    7  # https://learn.microsoft.com/en-us/rest/api/storageservices/get-user-delegation-key
)


class Authority(Protocol):
    """What deciding on a request takes: the accounts' keys, their identities and role assignments,
    the token signing keys to trust, and the time."""

    accounts: AccountRegistry
    access: AccessRegistry
    trusted_keys: TrustedKeys
    clock: Callable[[], float]


def need_of(req: Request) -> Need | None:
    """What the request's operation needs (an append that also flushes needs write)."""
    operation = req.operation
    if operation == "append" and (req.query.get("flush") or "").lower() == "true":
        operation = "appendFlush"
    return NEEDS.get(operation)


def _rename_source_filesystem(req: Request) -> str | None:
    if req.operation != "rename":
        return None
    source = (req.header("x-ms-rename-source") or "").split("?", 1)[0]
    segments = [s for s in source.split("/") if s]
    return segments[0] if segments else None


def authorize(app: Authority, req: Request, *, secure: bool) -> Caller | None:
    """Raise the service's StorageError unless the request may run; the caller of a bearer token."""
    key = app.accounts.key(req.account)
    if key is None:
        raise error("AccountNotFound")
    access = app.access.get(req.account)
    now = app.clock()
    authorization = req.header("authorization") or ""
    scheme, _, credentials = authorization.partition(" ")
    need = need_of(req)
    if scheme.lower() == "bearer":
        if not secure:
            detail = "Authentication scheme Bearer is not allowed with HTTP."
            raise error("AuthenticationFailed", detail=detail)
        caller = verify_bearer(
            credentials.strip(), keys=app.trusted_keys, tenant=access.tenant, account=req.account, now=now
        )
        if need is not None:
            _check_roles(app, req, caller.principal, need)
        return caller
    if not authorization and is_sas(req.query):
        grant = verify_sas(
            req.query,
            account=req.account,
            filesystem=req.filesystem,
            path=req.path,
            account_key=key,
            allow_shared_key_access=access.allow_shared_key_access,
            tenant=access.tenant,
            delegation_secret=access.delegation_secret,
            secure=secure,
            now=now,
        )
        if need is None:
            return None
        if not need.sas:
            raise error("AuthorizationFailure")
        if not any(letter in grant.permissions for letter in need.sas):
            raise error("AuthorizationPermissionMismatch")
        if grant.principal is not None:  # a user delegation SAS: the key holder's roles bound it
            _check_roles(app, req, grant.principal, need)
        return None
    if scheme == "SharedKey" and not access.allow_shared_key_access:
        raise error("KeyBasedAuthenticationNotPermitted")
    if req.operation == "userDelegationKey" and scheme == "SharedKey":
        raise error("AuthenticationFailed", detail="Only authentication scheme Bearer is supported")
    verify_shared_key(
        method=req.method,
        header_items=req.header_items,
        raw_path=req.raw_path,
        raw_query=req.raw_query,
        account=req.account,
        key=key,
    )
    return None


def _check_roles(app: Authority, req: Request, principal: str, need: Need) -> None:
    filesystems = {req.filesystem}
    source = _rename_source_filesystem(req)
    if source:
        filesystems.add(source)
    for filesystem in filesystems:
        if not app.access.allowed(
            req.account, principal, need.action, filesystem, account_scope=need.account_scope
        ):
            raise error("AuthorizationPermissionMismatch")


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_delegation_key(app: Authority, req: Request, caller: Caller | None) -> Response:
    """Get User Delegation Key: a key for the caller, valid from Start to Expiry (at most 7 days ahead)."""
    if caller is None:
        raise error("AuthenticationFailed", detail="Only authentication scheme Bearer is supported")
    try:
        # A local request body; the stdlib parser refuses external entities and expat (2.4.1 and later)
        # caps entity expansion.
        root = ElementTree.fromstring(req.body.decode("utf-8-sig"))  # noqa: S314
    except (ElementTree.ParseError, UnicodeDecodeError):
        raise error("InvalidInput", "The request body is not a valid KeyInfo XML document.") from None
    start_text = (root.findtext("Start") or "").strip()
    expiry_text = (root.findtext("Expiry") or "").strip()
    delegated_tid = (root.findtext("DelegatedUserTid") or "").strip()
    start, expiry = parse_time(start_text), parse_time(expiry_text)
    now = app.clock()
    if expiry is None or (start_text and start is None):
        raise error("InvalidInput", "KeyInfo needs a Start and an Expiry in ISO 8601 UTC.")
    if start is None:
        start = now
    if expiry <= start or expiry > now + MAX_DELEGATION_KEY_DAYS * 86400:
        raise error("InvalidInput", "The key's Expiry must follow its Start and be at most 7 days from now.")
    fields = {
        "skoid": caller.principal,
        "sktid": caller.tenant,
        "skt": _iso(start),
        "ske": _iso(expiry),
        "sks": "b",
        "skv": req.version,
        "skdutid": delegated_tid,
    }
    secret = app.access.get(req.account).delegation_secret
    value = delegation_key(secret, fields)
    body = (
        '\ufeff<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>'
        f"<SignedOid>{escape(fields['skoid'])}</SignedOid><SignedTid>{escape(fields['sktid'])}</SignedTid>"
        f"<SignedStart>{fields['skt']}</SignedStart><SignedExpiry>{fields['ske']}</SignedExpiry>"
        f"<SignedService>b</SignedService><SignedVersion>{escape(fields['skv'])}</SignedVersion>"
        + (f"<SignedDelegatedUserTid>{escape(delegated_tid)}</SignedDelegatedUserTid>" * bool(delegated_tid))
        + f"<Value>{value}</Value></UserDelegationKey>"
    )
    return Response(200, [("Content-Type", "application/xml")], body.encode("utf-8"))
