"""A customer's shared access signature, read without using it: its form, what it covers, its
permissions and its expiry. Pure.

The fields are Azure Storage's: `sv` version, `sr` signed resource (`c`: a container, which is an ADLS
Gen2 filesystem), `sp` permissions, `st`/`se` start and expiry (ISO 8601 UTC), `sig` the signature, and
for a user delegation SAS the signed key fields (`skoid`, `sktid`, ...); `ss`/`srt` mark an account SAS
(https://learn.microsoft.com/rest/api/storageservices/create-service-sas,
https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas,
https://learn.microsoft.com/rest/api/storageservices/create-account-sas). The service takes a
container (filesystem) SAS, service or user delegation: it is the narrowest that lets the export write
where it writes, and the only kind that keeps working when shared-key access is switched off (a user
delegation SAS).

Errors (`SasError`) state the rule and never quote the token or any part of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from shared.model import SasToken, Secret

MAX_LENGTH = 4096  # a user delegation SAS is about 600 characters
_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]+")
# ISO 8601 UTC as a SAS writes it: YYYY-MM-DD, YYYY-MM-DDThh:mmZ, YYYY-MM-DDThh:mm:ssZ, or with up to
# seven fractional digits (the create-service-sas page, "Specify the signature validity interval").
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?Z)?")
_REQUIRED = ("sv", "sr", "sp", "se", "sig")
_DELEGATION_KEY = ("skoid", "sktid", "skt", "ske", "sks", "skv")


@dataclass(frozen=True)
class Needed:
    """Permissions of which the SAS must grant at least one for an operation the export makes."""

    letters: str
    what: str


# What the export does in a filesystem or container, by destination kind (shared.destinations,
# shared.replay): create files, append (ADLS Gen2: append with flush, which needs write), read back
# (properties, ranges), delete the check's probe file, and on ADLS Gen2 rename a replay file into place.
NEEDED: dict[str, tuple[Needed, ...]] = {
    "adls": (
        Needed("r", "read (r)"),
        Needed("w", "write (w)"),
        Needed("d", "delete (d)"),
        Needed("m", "move (m)"),
    ),
    "blob": (
        Needed("r", "read (r)"),
        Needed("cw", "create or write (c, w)"),
        Needed("aw", "add or write (a, w)"),
        Needed("d", "delete (d)"),
    ),
}
RECOMMENDED = {"adls": "racwdlm", "blob": "racwdl"}


class SasError(ValueError):
    """A SAS the service cannot use; the message says why without quoting it."""


def parse(value: str, kind: str, *, target: str = "destination.sas") -> SasToken:
    """A container (filesystem) SAS for a destination of `kind` (`adls` or `blob`), with its expiry.

    Accepts the token as the portal and the CLI give it, with or without the leading `?`."""
    fields = _fields(value, target)
    if "ss" in fields or "srt" in fields:
        raise SasError(
            f"{target} is an account SAS: give a SAS for the {_scope(kind)} only (signed resource sr=c)"
        )
    missing = [name for name in _REQUIRED if not fields.get(name)]
    if missing:
        raise SasError(f"{target} lacks {', '.join(missing)}: give the whole SAS token")
    if fields["sr"] != "c":
        raise SasError(
            f"{target} must be a SAS for the whole {_scope(kind)} (signed resource sr=c), "
            "not for one blob, file or directory"
        )
    expires = signed_time(fields["se"])
    start = signed_time(fields["st"]) if fields.get("st") else None
    if expires is None or (fields.get("st") and start is None):
        raise SasError(f"{target} has a start or expiry (st, se) that is not an ISO 8601 UTC time")
    if start is not None and start >= expires:
        raise SasError(f"{target} expires (se) before it starts (st)")
    lacking = lacking_permissions(fields["sp"], kind)
    if lacking:
        raise SasError(
            f"{target} must grant the permissions the export uses; it lacks {', '.join(lacking)} "
            f"(a SAS with sp={RECOMMENDED[kind]} grants them all)"
        )
    delegated = "skoid" in fields
    if delegated and any(not fields.get(name) for name in _DELEGATION_KEY):
        raise SasError(f"{target} is a user delegation SAS without all of its signed key fields")
    return SasToken(Secret(value.removeprefix("?")), expires, delegated)


def lacking_permissions(permissions: str, kind: str) -> list[str]:
    """The permissions (as the customer reads them) that the SAS's `sp` does not grant."""
    return [need.what for need in NEEDED[kind] if not any(letter in permissions for letter in need.letters)]


def signed_time(value: str) -> float | None:
    """A SAS time (`st`, `se`) in seconds since the epoch; None when it is not one."""
    match = _TIME.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC
        )
    except ValueError:
        return None
    return moment.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _fields(value: str, target: str) -> dict[str, str]:
    text = value.removeprefix("?")
    if value.lower().startswith(("http://", "https://")):
        raise SasError(f"{target} is the SAS token (what follows '?' in a SAS URL), not the URL")
    if not text or len(text) > MAX_LENGTH or not _CHARACTERS.fullmatch(text):
        raise SasError(
            f"{target} must be a SAS token: a query string of at most {MAX_LENGTH} characters, "
            "like sv=...&sr=c&sp=...&se=...&sig=..."
        )
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise SasError(f"{target} is not a SAS token: name=value pairs joined by '&'") from None
    fields: dict[str, str] = {}
    for name, field_value in pairs:
        if name in fields:
            raise SasError(f"{target} names a field twice")
        fields[name] = field_value
    return fields


def _scope(kind: str) -> str:
    return "filesystem" if kind == "adls" else "container"
