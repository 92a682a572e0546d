"""Keyless destinations' failures in the customer's words: how each error is classified, and the hints
each cause gets for each authentication method (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import CredentialUnavailableError
from hypothesis import given
from hypothesis import strategies as st

from shared.api.rules import ID_PATTERN
from shared.health.rules import credential_expired, explanation, hints, warn_before
from shared.model import AdlsDestination, BlobDestination, EntraId, ExportStatus, SasToken, Secret
from shared.onboarding import CLAIM, EntraNotConfigured, ServiceIdentity, claimed_projects, role_assignment
from shared.outcomes import Cause, classify

APP = "11111111-2222-3333-4444-555555555555"
HOME = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
IDENTITY = "99999999-8888-7777-6666-555555555555"
CUSTOMER = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
SERVICE = ServiceIdentity(APP, HOME, IDENTITY)


def _storage_error(code: str, status: int, message: str = "refused") -> HttpResponseError:
    """An error as the Storage SDKs raise it: process_storage_error sets error_code from the response."""
    error = (ClientAuthenticationError if code == "AuthenticationFailed" else HttpResponseError)(
        message=message
    )
    error.error_code = code  # type: ignore[attr-defined]
    error.status_code = status
    return error


def _entra_error(code: int, status: int = 400) -> ClientAuthenticationError:
    """azure-identity's error for an Entra error answer: "Microsoft Entra ID error '(error) AADSTS...'"."""
    error = ClientAuthenticationError(
        message=f"Microsoft Entra ID error '(unauthorized_client) AADSTS{code}: Application with identifier "
        f"'{APP}' was not found in the directory '{CUSTOMER}'.\r\nTrace ID: x'"
    )
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("error", "cause", "code"),
    [
        (
            _storage_error("AuthorizationPermissionMismatch", 403),
            Cause.PERMISSION_MISSING,
            "AuthorizationPermissionMismatch",
        ),
        (
            _storage_error("KeyBasedAuthenticationNotPermitted", 403),
            Cause.SHARED_KEY_DISABLED,
            "KeyBasedAuthenticationNotPermitted",
        ),
        (
            _storage_error(
                "AuthenticationFailed",
                403,
                "AuthenticationErrorDetail:Signature not valid in the specified time frame: Start [...]",
            ),
            Cause.CREDENTIAL_EXPIRED,
            "AuthenticationFailed",
        ),
        (_storage_error("AuthenticationFailed", 403), Cause.AUTHENTICATION, "AuthenticationFailed"),
        (_storage_error("AuthorizationFailure", 403), Cause.AUTHENTICATION, "AuthorizationFailure"),
        (_entra_error(700016), Cause.CONSENT_MISSING, "AADSTS700016"),
        (_entra_error(65001), Cause.CONSENT_MISSING, "AADSTS65001"),
        (_entra_error(90002), Cause.AUTHENTICATION, "AADSTS90002"),
        (_entra_error(700213, 401), Cause.AUTHENTICATION, "AADSTS700213"),
        (
            CredentialUnavailableError(message="no managed identity endpoint"),
            Cause.TRANSIENT,
            "ManagedIdentityUnavailable",
        ),
        (ClientAuthenticationError(message="no token"), Cause.AUTHENTICATION, "TokenNotIssued"),
    ],
)
def test_keyless_failures_are_classified_into_causes_the_customer_can_act_on(
    error: Exception, cause: Cause, code: str
) -> None:
    """Role or SAS permission missing, shared keys off, consent missing (AADSTS700016, 65001), a SAS out
    of its time frame, other Entra errors by their AADSTS code, the managed identity unavailable."""
    failure = classify(error)
    assert (failure.cause, failure.code) == (cause, code)
    assert "Application with identifier" not in str(failure) and CUSTOMER not in str(failure)


def test_a_token_request_refused_after_the_accounts_challenge_takes_the_accounts_code() -> None:
    """azure-core raises the credential's error from the account's 401 (the challenge named another
    tenant): the account's error code is the failure's."""

    class Response:
        status_code = 401
        reason = "Unauthorized"
        headers = {"x-ms-error-code": "InvalidAuthenticationInfo"}

        def text(self) -> str:
            return ""

    refused = HttpResponseError(response=Response())  # type: ignore[arg-type]
    try:
        raise ClientAuthenticationError(message="not configured to acquire tokens for tenant x") from refused
    except ClientAuthenticationError as error:
        failure = classify(error)
    assert (failure.cause, failure.code, failure.status) == (
        Cause.AUTHENTICATION,
        "InvalidAuthenticationInfo",
        401,
    )


def _lake(credential: object) -> AdlsDestination:
    return AdlsDestination("https://contoso.dfs.core.windows.net", "exports", "signals", credential)  # type: ignore[arg-type]


def test_a_missing_role_says_which_role_to_which_principal_on_which_scope() -> None:
    """Entra ID in a customer's tenant: the application's client id, the role, the filesystem and the az
    command; in the service's tenant, the managed identity."""
    advice = " ".join(hints(Cause.PERMISSION_MISSING, SERVICE.access(_lake(EntraId(CUSTOMER)))))
    assert "Storage Blob Data Contributor" in advice and f"client id {APP}" in advice
    assert "filesystem `exports` of the storage account `contoso`" in advice
    assert f'az role assignment create --assignee "{APP}"' in advice
    own = " ".join(hints(Cause.PERMISSION_MISSING, SERVICE.access(_lake(EntraId(HOME)))))
    assert f"managed identity (client id {IDENTITY})" in own and APP not in own
    assert "resume" in advice


def test_consent_missing_gives_the_admin_consent_link_of_the_tenant() -> None:
    """The link is the authority's adminconsent endpoint of the customer's tenant, for the application."""
    access = SERVICE.access(_lake(EntraId(CUSTOMER)))
    advice = hints(Cause.CONSENT_MISSING, access)
    link = f"https://login.microsoftonline.com/{CUSTOMER}/adminconsent?client_id={APP}"
    assert advice[0].endswith(link) and access.consent_url == link
    assert CUSTOMER in explanation(Cause.CONSENT_MISSING, access)
    assert SERVICE.consent_url(HOME) == ""  # no consent in the service's own tenant


def test_each_method_words_its_failures_its_own_way() -> None:
    """A refused key, a refused SAS and a refused token get different explanations; a SAS's hints name
    the permissions and the property to patch; shared keys off points to Entra ID and user delegation
    SAS; an expired SAS says when."""
    expires = datetime(2030, 5, 1, 12, tzinfo=UTC).timestamp()
    key, token = _lake(Secret("k" * 88)), _lake(SasToken(Secret("sv=x"), expires))
    entra = _lake(EntraId(CUSTOMER))
    worded = {explanation(Cause.AUTHENTICATION, SERVICE.access(d)) for d in (key, token, entra)}
    assert len(worded) == 3
    assert "regenerated" in explanation(Cause.AUTHENTICATION, SERVICE.access(key))
    assert CUSTOMER in " ".join(hints(Cause.AUTHENTICATION, SERVICE.access(entra)))
    sas_hints = " ".join(hints(Cause.PERMISSION_MISSING, SERVICE.access(token)))
    assert "sp=racwdlm" in sas_hints and "destination.sas" in sas_hints
    blob = BlobDestination(
        "https://contoso.blob.core.windows.net", "signals", SasToken(Secret("sv=x"), expires)
    )
    assert "sp=racwdl," in " ".join(hints(Cause.CREDENTIAL_EXPIRED, SERVICE.access(blob)))
    off = " ".join(hints(Cause.SHARED_KEY_DISABLED, SERVICE.access(key)))
    assert "Microsoft Entra ID" in off and "user delegation SAS" in off
    assert "2030-05-01T12:00:00Z" in explanation(Cause.CREDENTIAL_EXPIRED, SERVICE.access(token))
    assert hints(Cause.AUTHENTICATION) == hints(Cause.AUTHENTICATION, SERVICE.access(key))


def test_without_the_services_settings_entra_is_not_configured_and_says_which_settings() -> None:
    """No application: other tenants are refused; no managed identity: the service's tenant too."""
    with pytest.raises(EntraNotConfigured, match="EXPORT_APP_CLIENT_ID"):
        ServiceIdentity().principal(CUSTOMER)
    with pytest.raises(EntraNotConfigured, match="EXPORT_IDENTITY_CLIENT_ID"):
        ServiceIdentity(APP, HOME).principal(HOME)
    assert ServiceIdentity(APP, HOME).principal(CUSTOMER).client_id == APP


def test_the_role_assignment_is_at_the_filesystem_or_container_scope() -> None:
    """The least the export needs: Storage Blob Data Contributor on its filesystem or container only."""
    principal = SERVICE.principal(CUSTOMER)
    lake = role_assignment(_lake(EntraId(CUSTOMER)), principal)
    assert lake.scope.endswith("storageAccounts/contoso/blobServices/default/containers/exports")
    assert lake.role_id == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    assert "scope: container" in lake.bicep and "principalType: 'ServicePrincipal'" in lake.bicep
    blob = role_assignment(
        BlobDestination("https://contoso.blob.core.windows.net", "signals", EntraId(CUSTOMER)), principal
    )
    assert blob.command.endswith('/blobServices/default/containers/signals"')


def test_an_active_export_is_postponed_once_its_sas_expired_and_warned_once_before() -> None:
    """From `ahead` before the expiry the customer is warned, once per expiry; at the expiry an active
    export is postponed (credential-expired); a postponed or disabled one is left as it is."""
    expires = 1_000_000.0
    ahead = timedelta(days=7)
    week = ahead.total_seconds()
    assert not warn_before(expires, expires - week - 1, ahead=ahead, warned=0.0)
    assert warn_before(expires, expires - week, ahead=ahead, warned=0.0)
    assert not warn_before(expires, expires - 10, ahead=ahead, warned=expires)
    assert warn_before(expires + 1, expires - 10, ahead=ahead, warned=expires)  # a new SAS: warned again
    assert not warn_before(expires, expires, ahead=ahead, warned=0.0)
    assert not warn_before(None, expires, ahead=ahead, warned=0.0)
    assert credential_expired(ExportStatus.ACTIVE, expires, expires - 1) is None
    decision = credential_expired(ExportStatus.ACTIVE, expires, expires)
    assert decision is not None and (decision.status, decision.cause) == (
        ExportStatus.POSTPONED,
        "credential-expired",
    )
    assert credential_expired(ExportStatus.POSTPONED, expires, expires + 1) is None
    assert credential_expired(ExportStatus.ACTIVE, None, expires) is None


_PROJECT = st.from_regex(ID_PATTERN, fullmatch=True)


@given(
    projects=st.lists(_PROJECT, max_size=6),
    other=_PROJECT,
    spaces=st.sampled_from(["", " ", "  "]),
    name=st.sampled_from([CLAIM, CLAIM.upper(), "SignalsExportProjects"]),
    extra=st.dictionaries(st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True), _PROJECT, max_size=3),
)
def test_a_claim_names_exactly_the_projects_listed_whatever_the_case_of_its_name(
    projects: list[str], other: str, spaces: str, name: str, extra: dict[str, str]
) -> None:
    """The claim's value, comma-separated with blanks around or between, names the projects listed and
    no other (not a part of one, nor a value of another metadata name); no claim names none."""
    metadata = {**{key: value for key, value in extra.items() if key != CLAIM}, name: ""}
    metadata[name] = f",{spaces}".join(projects) + ("," if spaces else "")
    claimed = claimed_projects(metadata)
    assert claimed == frozenset(projects)
    for unnamed in {other, *(project[:-1] for project in projects)} - set(projects):
        assert unnamed not in claimed
    assert claimed_projects(None) == frozenset() == claimed_projects(extra)
