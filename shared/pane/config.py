"""How the pane signs customers in with Microsoft Entra ID (MSAL for the browser), derived from the
settings the management API already trusts, so that the pane asks for exactly the tokens the API takes:

- authority: the tenant of `AUTH_ISSUER` (`https://login.microsoftonline.com/<tenant>/v2.0` gives
  `https://login.microsoftonline.com/<tenant>`; the v1 issuer `https://sts.windows.net/<tenant>/` too);
- client id: `PORTAL_CLIENT_ID` (a single-page app registration of its own), else the client id (a GUID)
  among `AUTH_AUDIENCE` (the API's own registration, with the pane's redirect URI added as a SPA one);
- scope: `<the API's first audience>/.default`, so the token carries the app roles the API reads.

Without an authority or a client id, the pane offers no Microsoft sign-in (the local host then offers
its development sign-in instead). Pure: the settings come in, a value goes out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

CLIENT_ID_SETTING = "PORTAL_CLIENT_ID"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")  # a GUID or a domain name
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_V1_HOST = "sts.windows.net"
_V1_AUTHORITY_HOST = "login.microsoftonline.com"


class TrustedIssuers(Protocol):
    """What the API trusts (shared.api.config.ApiSettings has these)."""

    @property
    def issuers(self) -> tuple[str, ...]: ...

    @property
    def audiences(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class EntraSignIn:
    """What MSAL for the browser is configured with."""

    client_id: str
    authority: str  # https://<login host>/<tenant>
    scopes: tuple[str, ...]

    @property
    def origin(self) -> str:
        """The authority's origin: the only host besides the pane's own that the pane may contact."""
        parts = urlsplit(self.authority)
        return f"{parts.scheme}://{parts.netloc}"

    def to_json(self) -> dict[str, Any]:
        return {"clientId": self.client_id, "authority": self.authority, "scopes": list(self.scopes)}


def authority_of(issuer: str) -> str | None:
    """The authority MSAL signs in against for a token issuer, or None when it is not an Entra issuer."""
    try:
        parts = urlsplit(issuer.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or parts.query or parts.fragment or parts.username or parts.password:
        return None
    if not _HOST.match(host) or parts.port not in (None, 443):
        return None
    segments = [s for s in parts.path.split("/") if s]
    if host == _V1_HOST and len(segments) == 1:
        tenant, host = segments[0], _V1_AUTHORITY_HOST
    elif len(segments) == 2 and segments[1] == "v2.0":
        tenant = segments[0]
    else:
        return None
    if not _TENANT.match(tenant):
        return None
    return f"https://{host}/{tenant}"


def client_id_of(audiences: Sequence[str], configured: str = "") -> str | None:
    """The client id the pane signs in as: the configured one, else the first GUID audience."""
    chosen = configured.strip()
    if chosen:
        return chosen if _GUID.match(chosen) else None
    return next((a for a in audiences if _GUID.match(a)), None)


def entra_sign_in(
    issuers: Sequence[str], audiences: Sequence[str], client_id: str = ""
) -> EntraSignIn | None:
    """The Microsoft sign-in for the API's issuers and audiences, or None when it cannot be offered."""
    authority = next((a for a in map(authority_of, issuers) if a), None)
    chosen = client_id_of(audiences, client_id)
    if authority is None or chosen is None or not audiences:
        return None
    return EntraSignIn(chosen, authority, (f"{audiences[0].rstrip('/')}/.default",))
