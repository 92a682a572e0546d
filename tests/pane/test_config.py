"""Which Microsoft sign-in the pane offers, from the settings the API trusts (pure)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from shared.pane.config import authority_of, client_id_of, entra_sign_in

TENANT = "8c2f1c9e-4b7a-4f1e-9d3a-2b6f0e5a7c11"
CLIENT = "5d1e0a2b-9c3f-4e6d-8a7b-1f2e3d4c5b6a"


def test_the_authority_is_the_issuers_tenant_on_its_login_host() -> None:
    """v2.0 issuers keep their host (public and national clouds); the v1 issuer maps to the public one."""
    assert (
        authority_of(f"https://login.microsoftonline.com/{TENANT}/v2.0")
        == f"https://login.microsoftonline.com/{TENANT}"
    )
    assert (
        authority_of(f"https://login.microsoftonline.us/{TENANT}/v2.0")
        == f"https://login.microsoftonline.us/{TENANT}"
    )
    assert authority_of(f"https://sts.windows.net/{TENANT}/") == f"https://login.microsoftonline.com/{TENANT}"
    assert authority_of("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0") == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com"
    )


def test_what_is_not_an_entra_issuer_gives_no_authority() -> None:
    """Plain http, other shapes, ports, credentials, queries: no Microsoft sign-in is offered."""
    for issuer in (
        f"http://login.microsoftonline.com/{TENANT}/v2.0",
        f"https://login.microsoftonline.com/{TENANT}",
        f"https://login.microsoftonline.com/{TENANT}/v2.0/extra",
        f"https://login.microsoftonline.com:8443/{TENANT}/v2.0",
        f"https://user:pass@login.microsoftonline.com/{TENANT}/v2.0",
        f"https://login.microsoftonline.com/{TENANT}/v2.0?x=1",
        "https://login.microsoftonline.com/<script>/v2.0",
        "https://localhost/tenant/v2.0x",
        "",
    ):
        assert authority_of(issuer) is None, issuer


def test_the_client_id_is_the_configured_one_else_the_guid_audience() -> None:
    """PORTAL_CLIENT_ID wins (when it is a client id); else the first GUID among the API's audiences."""
    assert client_id_of(("api://signals-export", CLIENT)) == CLIENT
    assert client_id_of(("api://signals-export",)) is None
    other = str(uuid.uuid4())
    assert client_id_of((CLIENT,), other) == other
    assert client_id_of((CLIENT,), "not a client id") is None


def test_the_development_issuer_offers_no_microsoft_sign_in() -> None:
    """The local host's issuer and audience are not Entra's: the pane offers its development sign-in."""
    assert (
        entra_sign_in(("https://login.signals-export.localhost/dev/v2.0",), ("api://signals-export-dev",))
        is None
    )


def test_the_scope_is_the_apis_first_audience() -> None:
    """The token is asked for the API (its first audience), so it carries the API's app roles."""
    issuers = (f"https://login.microsoftonline.com/{TENANT}/v2.0",)
    signin = entra_sign_in(issuers, ("api://signals-export", CLIENT), str(uuid.UUID(int=7)))
    assert signin is not None
    assert signin.scopes == ("api://signals-export/.default",)
    assert signin.client_id == str(uuid.UUID(int=7))
    assert signin.origin == "https://login.microsoftonline.com"


@given(st.text(max_size=300))
def test_any_issuer_gives_an_https_authority_without_surprises_or_none(issuer: str) -> None:
    """Whatever the setting holds: None, or an https authority of exactly a host and a tenant, which
    the CSP can name as an origin (no spaces, quotes or semicolons)."""
    authority = authority_of(issuer)
    if authority is not None:
        assert authority.startswith("https://")
        assert authority.count("/") == 3
        assert not any(c in authority for c in " ;'\"\\,<>")


@given(st.lists(st.text(max_size=60), max_size=4), st.text(max_size=60))
def test_any_audiences_give_a_guid_client_id_or_none(audiences: list[str], configured: str) -> None:
    """The client id MSAL is given is always a GUID, never a value copied from elsewhere unchecked."""
    chosen = client_id_of(audiences, configured)
    if chosen is not None:
        assert str(uuid.UUID(chosen)) == chosen.lower()
