"""Service SAS and user delegation SAS, checked the way Azure Storage checks them.

The string to sign is rebuilt from the request's query and path for the SAS version (`sv`) it names
and compared with `sig` (HMAC-SHA256, with the account key for a service SAS, with the user
delegation key for a user delegation SAS). The layouts, for `sv` 2020-12-06 and later:

- service SAS: sp, st, se, canonicalized resource, si, sip, spr, sv, sr, snapshot, ses, rscc, rscd,
  rsce, rscl, rsct (https://learn.microsoft.com/en-us/rest/api/storageservices/create-service-sas);
- user delegation SAS: sp, st, se, canonicalized resource, skoid, sktid, skt, ske, sks, skv, saoid,
  suoid, scid, [skdutid, sduoid from 2025-07-05], sip, spr, sv, sr, snapshot, ses, [srh, srq from
  2026-04-06], rscc, rscd, rsce, rscl, rsct
  (https://learn.microsoft.com/en-us/rest/api/storageservices/create-user-delegation-sas; the version
  boundaries as Azurite 3.37 implements them, src/blob/authentication/IBlobSASSignatureValues.ts, and
  as azure-storage-blob 12.31 signs them, azure/storage/blob/_shared_access_signature.py).

The canonicalized resource is `/blob/<account>/<container>` (`sr=c`), `.../<blob>` (`sr=b`), or the
directory the request's path is in at depth `sdd` (`sr=d`): a SAS for another container, blob or
directory fails the signature check, as on the service.

Answers, as the service gives them: a wrong signature 403 AuthenticationFailed "Signature did not
match. String to sign used was ..."; outside [st, se] 403 AuthenticationFailed "Signature not valid in
the specified time frame: Start [...] - Expiry [...] - Current [...]" (recorded responses:
microsoft/AzureStorageExplorer#3219, #3163); a permission the SAS lacks 403
AuthorizationPermissionMismatch; `spr=https` over http 403 AuthorizationProtocolMismatch; a SAS signed
with the account key on an account whose shared-key access is off 403 KeyBasedAuthenticationNotPermitted.
Stored access policies (`si`) and account SAS are not emulated (refused with a detail that says so).

A user delegation key is derived, not stored: HMAC-SHA256 over its signed fields with the account's
delegation secret, so the emulator recomputes it from the SAS alone (and a new secret revokes them all).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate

from .errors import StorageError, error

MIN_VERSION = "2020-12-06"
_USER_DELEGATION_FIELDS = ("skoid", "sktid", "skt", "ske", "sks", "skv")


@dataclass(frozen=True)
class SasGrant:
    """What a valid SAS grants: its permissions, and for a user delegation SAS the principal whose
    roles still bound it."""

    permissions: str
    principal: str | None


def is_sas(query: Mapping[str, str]) -> bool:
    return "sig" in query


def parse_time(value: str) -> float | None:
    """A SAS time: ISO 8601 UTC (`2024-05-01T10:00:00Z`, fractions allowed) or a date."""
    text = value.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            moment = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)
        else:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return moment.timestamp()


def _http_date(epoch: float | None) -> str:
    return "" if epoch is None else formatdate(epoch, usegmt=True)


def _failed(detail: str) -> StorageError:
    return error("AuthenticationFailed", detail=detail)


def delegation_key(secret: str, query: Mapping[str, str]) -> str:
    """The user delegation key (base64) for the signed key fields of a SAS or a Get User Delegation Key."""
    fields = "\n".join(query.get(name, "") for name in (*_USER_DELEGATION_FIELDS, "skdutid"))
    digest = hmac.new(base64.b64decode(secret), fields.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def canonical_resource(account: str, filesystem: str, path: str, query: Mapping[str, str]) -> str:
    """`/blob/<account>/<container>[/<blob or directory>]` for the SAS's `sr` and this request."""
    resource = query.get("sr", "")
    if resource == "c":
        return f"/blob/{account}/{filesystem}"
    if resource in ("b", "bs", "bv"):
        return f"/blob/{account}/{filesystem}/{path}"
    if resource == "d":
        try:
            depth = int(query.get("sdd", ""))
        except ValueError:
            raise _failed("Signed Directory Depth Invalid") from None
        segments = [s for s in path.split("/") if s]
        if depth < 0 or depth > len(segments):
            raise _failed("Signed Directory Depth Invalid")
        directory = "/".join(segments[:depth])
        return f"/blob/{account}/{filesystem}" + (f"/{directory}" if directory else "")
    raise _failed("Signed resource type (sr) is not valid for a service SAS.")


def string_to_sign(query: Mapping[str, str], resource: str) -> str:
    """The string to sign of a service or user delegation SAS of version 2020-12-06 or later."""
    version = query.get("sv", "")

    def q(name: str) -> str:
        return query.get(name, "")

    parts = [q("sp"), q("st"), q("se"), resource]
    if "skoid" in query:
        parts += [q(name) for name in _USER_DELEGATION_FIELDS]
        parts += [q("saoid"), q("suoid"), q("scid")]
        if version >= "2025-07-05":
            parts += [q("skdutid"), q("sduoid")]
        parts += [q("sip"), q("spr"), version, q("sr"), q("snapshot"), q("ses")]
        if version >= "2026-04-06":
            parts += [q("srh"), q("srq")]
    else:
        parts += [q("si"), q("sip"), q("spr"), version, q("sr"), q("snapshot"), q("ses")]
    parts += [q("rscc"), q("rscd"), q("rsce"), q("rscl"), q("rsct")]
    return "\n".join(parts)


def verify_sas(
    query: Mapping[str, str],
    *,
    account: str,
    filesystem: str,
    path: str,
    account_key: str,
    allow_shared_key_access: bool,
    tenant: str | None,
    delegation_secret: str,
    secure: bool,
    now: float,
) -> SasGrant:
    """What a SAS grants, or the StorageError the service answers it with, checked in the service's
    order: its form, its signature, its time frame, a user delegation key's, then the protocol."""
    user_delegation = _check_form(
        query, filesystem=filesystem, allow_shared_key_access=allow_shared_key_access
    )
    text = string_to_sign(query, canonical_resource(account, filesystem, path, query))
    if user_delegation:
        if any(not query.get(name) for name in _USER_DELEGATION_FIELDS):
            raise _failed("Signature fields not well formed.")
        key = delegation_key(delegation_secret, query)
    else:
        key = account_key
    _check_signature(query, text, key)
    _check_time_frame(query, now)
    if user_delegation:
        _check_delegation_key(query, tenant, now)
    protocols = query.get("spr", "https,http")
    if not secure and "http" not in [p.strip() for p in protocols.split(",")]:
        raise StorageError(
            403,
            "AuthorizationProtocolMismatch",
            "This request is not authorized to perform this operation using this protocol.",
        )
    return SasGrant(permissions=query["sp"], principal=query["skoid"] if user_delegation else None)


def _check_form(query: Mapping[str, str], *, filesystem: str, allow_shared_key_access: bool) -> bool:
    """Refuse a SAS the emulator does not take or whose fields are missing; whether it is a user
    delegation SAS."""
    if "ss" in query or "srt" in query:
        if not allow_shared_key_access:
            raise error("KeyBasedAuthenticationNotPermitted")
        raise _failed("Account SAS is not emulated; use a service SAS or a user delegation SAS.")
    user_delegation = "skoid" in query
    if not user_delegation and not allow_shared_key_access:
        raise error("KeyBasedAuthenticationNotPermitted")
    if "si" in query:
        raise _failed("Stored access policies (si) are not emulated.")
    if query.get("sv", "") < MIN_VERSION:
        raise _failed(f"The emulator checks SAS of version {MIN_VERSION} and later (sv).")
    if not query.get("sp") or not query.get("se"):
        raise _failed("Signature fields not well formed.")
    if not filesystem:
        raise _failed("A service SAS cannot authorize an account-level operation.")
    return user_delegation


def _check_signature(query: Mapping[str, str], text: str, key: str) -> None:
    try:
        expected = base64.b64encode(
            hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
        ).decode("ascii")
    except ValueError:
        raise _failed("The signing key is not valid base64.") from None
    if not hmac.compare_digest(expected.encode("ascii"), query.get("sig", "").encode("utf-8", "replace")):
        raise _failed(f"Signature did not match. String to sign used was {text}")


def _check_time_frame(query: Mapping[str, str], now: float) -> None:
    start, expiry = parse_time(query.get("st", "")), parse_time(query.get("se", ""))
    if expiry is None or (query.get("st") and start is None):
        raise _failed("Signature fields not well formed.")
    if (start is not None and now < start) or now > expiry:
        raise _failed(
            f"Signature not valid in the specified time frame: Start [{_http_date(start)}] - "
            f"Expiry [{_http_date(expiry)}] - Current [{_http_date(now)}]"
        )


def _check_delegation_key(query: Mapping[str, str], tenant: str | None, now: float) -> None:
    key_start, key_expiry = parse_time(query["skt"]), parse_time(query["ske"])
    if key_start is None or key_expiry is None or now < key_start or now > key_expiry:
        raise _failed(
            f"The user delegation key is not valid at this time: Start [{_http_date(key_start)}] - "
            f"Expiry [{_http_date(key_expiry)}] - Current [{_http_date(now)}]"
        )
    if tenant is None or query["sktid"] != tenant:
        raise _failed("The user delegation key was not issued for this account's tenant.")
