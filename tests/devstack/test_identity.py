"""The local identity stand-ins: the Entra ID token endpoint (consent, federated credentials), the
managed-identity endpoint, the local CA, and Azurite taking tokens over HTTPS."""

from __future__ import annotations

import datetime
import http.client
import json
import socket
import ssl
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.adls_emulator import TrustedKeys
from devstack.adls_emulator.errors import StorageError
from devstack.adls_emulator.oauth import verify_bearer
from devstack.adls_emulator.sas import parse_time, verify_sas
from devstack.azurite import Azurite
from devstack.entra import JWT_BEARER, Directory, EntraError, ManagedIdentity
from devstack.keyless import LocalIdentity
from devstack.local_tls import LocalTls
from tests.emulator.keyless import identity, managed_identity

__all__ = ["identity", "managed_identity"]  # fixtures shared with tests/emulator
TOKEN_EXCHANGE = "api://AzureADTokenExchange/.default"
STORAGE = "https://storage.azure.com/.default"


def _credential(identity: LocalIdentity, tenant: str, assertion: object) -> ClientAssertionCredential:
    return ClientAssertionCredential(
        tenant,
        identity.ids.application_client_id,
        assertion,  # type: ignore[arg-type]
        authority=identity.entra.authority,
        connection_verify=str(identity.tls.ca_file),
    )


def _post_token(identity: LocalIdentity, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, object]]:
    context = ssl.create_default_context(cafile=str(identity.tls.ca_file))
    connection = http.client.HTTPSConnection("127.0.0.1", identity.entra.port, timeout=10, context=context)
    connection.request(
        "POST", f"/{tenant}/oauth2/v2.0/token", body=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def _claims(token: str) -> dict[str, object]:
    import jwt

    return dict(jwt.decode(token, options={"verify_signature": False}))


# -- the token endpoint ------------------------------------------------------------------------------


def test_assertion_exchange_gives_a_v1_storage_token_of_the_customer_tenant(
    identity: LocalIdentity, managed_identity: ManagedIdentityCredential
) -> None:
    """The managed identity's token for api://AzureADTokenExchange buys a Storage token in a consented
    tenant: issuer sts.windows.net/<tenant>/, the application's id, its service principal's oid there."""
    tenant = identity.customer_tenant()
    assertion = managed_identity.get_token(TOKEN_EXCHANGE).token
    mi_claims = _claims(assertion)
    assert mi_claims["iss"] == f"https://login.microsoftonline.com/{identity.ids.service_tenant}/v2.0"
    assert mi_claims["sub"] == identity.ids.identity_principal_id
    assert mi_claims["aud"] == "api://AzureADTokenExchange"
    token = _credential(identity, tenant, lambda: assertion).get_token(STORAGE)
    claims = _claims(token.token)
    assert claims["iss"] == f"https://sts.windows.net/{tenant}/" and claims["tid"] == tenant
    assert claims["aud"] == "https://storage.azure.com"
    assert claims["appid"] == identity.ids.application_client_id
    assert claims["oid"] == identity.principal_in(tenant) != identity.principal_in(identity.customer_tenant())
    assert isinstance(claims["exp"], int) and isinstance(claims["nbf"], int) and claims["exp"] > claims["nbf"]


def test_tenant_without_consent_is_refused_with_aadsts700016_until_an_admin_consents(
    identity: LocalIdentity, managed_identity: ManagedIdentityCredential
) -> None:
    """Without consent: 400 unauthorized_client AADSTS700016 in Entra's error body, surfaced by
    azure-identity as ClientAuthenticationError; after the admin-consent link is opened, tokens come."""
    tenant = identity.customer_tenant(consented=False)
    assertion = managed_identity.get_token(TOKEN_EXCHANGE).token
    with pytest.raises(ClientAuthenticationError) as refused:
        _credential(identity, tenant, lambda: assertion).get_token(STORAGE)
    assert "AADSTS700016" in refused.value.message and "unauthorized_client" in refused.value.message
    assert refused.value.response is not None and refused.value.response.status_code == 400
    status, body = _post_token(
        identity, tenant,
        {"grant_type": "client_credentials", "client_id": identity.ids.application_client_id,
         "client_assertion_type": JWT_BEARER, "client_assertion": assertion, "scope": STORAGE},
    )  # fmt: skip
    assert status == 400 and body["error"] == "unauthorized_client" and body["error_codes"] == [700016]
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=700016"
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    link = urlsplit(identity.entra.admin_consent_url(tenant, identity.ids.application_client_id))
    context = ssl.create_default_context(cafile=str(identity.tls.ca_file))
    connection = http.client.HTTPSConnection("127.0.0.1", identity.entra.port, timeout=10, context=context)
    connection.request(
        "GET", f"{link.path}?{link.query}&redirect_uri=https%3A%2F%2Fexample.org%2Fdone&state=s1"
    )
    response = connection.getresponse()
    assert response.status == 302
    assert (
        response.getheader("Location")
        == f"https://example.org/done?admin_consent=True&tenant={tenant}&state=s1"
    )
    assert _credential(identity, tenant, lambda: assertion).get_token(STORAGE).token


def test_assertion_of_an_untrusted_identity_has_no_matching_federated_credential(
    identity: LocalIdentity,
) -> None:
    """Another managed identity's token (another subject) is refused AADSTS700213; its Storage token (a v1
    issuer) AADSTS700211; a token for another audience AADSTS700212; an expired one AADSTS700024; a forged
    one AADSTS700027."""
    tenant = identity.customer_tenant()
    other = ManagedIdentity(str(uuid.uuid4()), str(uuid.uuid4()), identity.ids.service_tenant)
    identity.directory.add_managed_identity(other)
    directory = identity.directory
    cases = {
        700213: directory.managed_identity_token(other.client_id, "api://AzureADTokenExchange"),
        700211: directory.managed_identity_token(
            identity.ids.identity_client_id, "https://storage.azure.com"
        ),
        700212: directory.mint(
            {
                **_claims(
                    directory.managed_identity_token(
                        identity.ids.identity_client_id, "api://AzureADTokenExchange"
                    )
                ),
                "aud": "api://SomethingElse",
            }
        ),
        700024: directory.mint(
            {
                **_claims(
                    directory.managed_identity_token(
                        identity.ids.identity_client_id, "api://AzureADTokenExchange"
                    )
                ),
                "exp": int(time.time()) - 3600,
            }
        ),
        700027: _forged(identity),
    }
    for code, assertion in cases.items():
        with pytest.raises(ClientAuthenticationError) as refused:
            _credential(identity, tenant, lambda a=assertion: a).get_token(STORAGE)
        assert f"AADSTS{code}" in refused.value.message, code
        assert "invalid_client" in refused.value.message


def _forged(identity: LocalIdentity) -> str:
    """The identity's assertion as another directory (another key) would sign it."""
    forger = Directory()
    forger.add_managed_identity(
        ManagedIdentity(
            identity.ids.identity_client_id, identity.ids.identity_principal_id, identity.ids.service_tenant
        )
    )
    return forger.managed_identity_token(identity.ids.identity_client_id, "api://AzureADTokenExchange")


def test_token_endpoint_refuses_bad_requests_with_entra_errors(identity: LocalIdentity) -> None:
    """Unknown tenant (AADSTS90002), no assertion (AADSTS7000216), a scope without /.default (AADSTS1002012),
    a resource that is not Storage (AADSTS500011): each with its status and OAuth error."""
    tenant = identity.customer_tenant()
    assertion = identity.directory.managed_identity_token(
        identity.ids.identity_client_id, "api://AzureADTokenExchange"
    )
    base = {"grant_type": "client_credentials", "client_id": identity.ids.application_client_id,
            "client_assertion_type": JWT_BEARER, "client_assertion": assertion, "scope": STORAGE}  # fmt: skip
    cases = [
        (str(uuid.uuid4()), base, 400, "invalid_request", 90002),
        (tenant, {**base, "client_assertion": ""}, 401, "invalid_client", 7000216),
        (
            tenant,
            {**base, "scope": "https://storage.azure.com/user_impersonation"},
            400,
            "invalid_scope",
            1002012,
        ),
        (tenant, {**base, "scope": "https://vault.azure.net/.default"}, 400, "invalid_resource", 500011),
        (tenant, {**base, "grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ]
    for where, form, status, error, code in cases:
        got_status, body = _post_token(identity, where, form)
        assert (got_status, body["error"], body["error_codes"]) == (status, error, [code])
        assert assertion not in json.dumps(body)


def test_openid_metadata_and_keys_are_served(identity: LocalIdentity) -> None:
    """The OpenID configuration names the local token endpoint and the keys the tokens are signed with."""
    tenant = identity.ids.service_tenant
    context = ssl.create_default_context(cafile=str(identity.tls.ca_file))
    connection = http.client.HTTPSConnection("127.0.0.1", identity.entra.port, timeout=10, context=context)
    connection.request("GET", f"/{tenant}/v2.0/.well-known/openid-configuration")
    metadata = json.loads(connection.getresponse().read())
    assert metadata["token_endpoint"] == f"{identity.entra.authority}/{tenant}/oauth2/v2.0/token"
    assert metadata["issuer"] == f"https://login.microsoftonline.com/{tenant}/v2.0"
    connection.request("GET", urlsplit(metadata["jwks_uri"]).path)
    keys = json.loads(connection.getresponse().read())
    assert keys == identity.directory.jwks() and "d" not in keys["keys"][0]


# -- the managed-identity endpoint ---------------------------------------------------------------------


def test_managed_identity_endpoint_needs_its_header_and_a_known_identity(identity: LocalIdentity) -> None:
    """Without the X-IDENTITY-HEADER secret: 401; an unknown client_id: 400; the right call: App Service's
    answer with expires_on as a string of epoch seconds."""
    port = urlsplit(identity.endpoint.url).port
    query = urlencode({"api-version": "2019-08-01", "resource": "https://storage.azure.com"})

    def get(extra: str, header: str | None) -> tuple[int, dict[str, object]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(
            "GET", f"/msi/token?{query}{extra}", headers={"X-IDENTITY-HEADER": header} if header else {}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    assert get("", None)[0] == 401
    assert get("", "wrong")[0] == 401
    assert get(f"&client_id={uuid.uuid4()}", identity.endpoint.secret)[0] == 400
    status, body = get(f"&client_id={identity.ids.identity_client_id}", identity.endpoint.secret)
    assert status == 200 and body["client_id"] == identity.ids.identity_client_id
    assert isinstance(body["expires_on"], str) and int(body["expires_on"]) > time.time()
    assert body["resource"] == "https://storage.azure.com" and body["token_type"] == "Bearer"


# -- the local CA ----------------------------------------------------------------------------------------


def test_local_ca_is_kept_and_trusted_only_where_given(tmp_path: Path) -> None:
    """The CA and certificate are made once and read back; a client with the CA (or the bundle) connects,
    one with only the public CAs refuses the certificate; the keys are readable by the owner only."""
    first = LocalTls.ensure(tmp_path)
    ca = first.ca_file.read_bytes()
    second = LocalTls.ensure(tmp_path)
    assert second.ca_file.read_bytes() == ca
    assert (first.key_file.stat().st_mode & 0o777) == 0o600
    assert ca in second.ca_bundle.read_bytes()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    server = first.server_context()
    port = listener.getsockname()[1]

    def handshake(context: ssl.SSLContext, host: str) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            accepted, _ = listener.accept()
            with accepted:
                import threading

                thread = threading.Thread(target=lambda: _server_side(server, accepted), daemon=True)
                thread.start()
                try:
                    with context.wrap_socket(raw, server_hostname=host):
                        pass
                finally:
                    thread.join(timeout=5)

    handshake(first.client_context(), "127.0.0.1")
    handshake(ssl.create_default_context(cafile=str(first.ca_bundle)), "localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ssl.create_default_context(), "127.0.0.1")
    listener.close()


def _server_side(context: ssl.SSLContext, connection: socket.socket) -> None:
    try:
        with context.wrap_socket(connection, server_side=True):
            pass
    except (ssl.SSLError, OSError):
        pass


# -- Azurite with OAuth over HTTPS -----------------------------------------------------------------------


def test_azurite_takes_exchanged_tokens_over_https_for_append_blobs(
    identity: LocalIdentity, managed_identity: ManagedIdentityCredential, tmp_path: Path
) -> None:
    """Azurite (blob only, --oauth basic, the local certificate) runs the Blob sink's calls with the
    exchanged token: container, append blob with appendpos, read; an expired token is refused 403."""
    tenant = identity.customer_tenant()
    with Azurite(location=tmp_path, accounts={"keylessblob": "a2V5IG9mIHRoZSBrZXlsZXNzIGJsb2IgYWNjb3VudCE="},
                 tls=identity.tls, oauth=True, blob_only=True) as azurite:  # fmt: skip
        assert azurite.url("blob", "keylessblob").startswith("https://")
        credential = _credential(identity, tenant, lambda: managed_identity.get_token(TOKEN_EXCHANGE).token)
        service = BlobServiceClient(
            azurite.url("blob", "keylessblob"),
            credential=credential,
            connection_verify=str(identity.tls.ca_file),
        )
        container = service.create_container("exports")
        blob = container.get_blob_client("p/name/2024-05-01/10/20240501_1000_b1_0.blob")
        blob.create_append_blob()
        blob.append_block(b"a\n", appendpos_condition=0)
        blob.append_block(b"b\n", appendpos_condition=2)
        assert blob.download_blob(offset=2, length=2).readall() == b"b\n"
        expired = identity.directory.mint(
            {**_claims(credential.get_token(STORAGE).token), "exp": int(time.time()) - 60}
        )
        context = ssl.create_default_context(cafile=str(identity.tls.ca_file))
        connection = http.client.HTTPSConnection("127.0.0.1", azurite.blob_port, timeout=10, context=context)
        connection.request(
            "GET",
            "/keylessblob/exports?restype=container",
            headers={"Authorization": f"Bearer {expired}", "x-ms-version": "2025-01-05"},
        )
        response = connection.getresponse()
        assert (response.status, response.getheader("x-ms-error-code")) == (403, "AuthenticationFailed")


# -- parsers never fail any other way ----------------------------------------------------------------------

_KEYS = TrustedKeys(Directory().jwks())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_bearer_parser_answers_only_storage_errors(token: str) -> None:
    """Any Authorization value is either a caller or a 401 InvalidAuthenticationInfo, never a crash."""
    with pytest.raises(StorageError) as refused:
        verify_bearer(token, keys=_KEYS, tenant=str(uuid.uuid4()), account="acct", now=time.time())
    assert refused.value.status == 401 and refused.value.code == "InvalidAuthenticationInfo"


_SAS_NAMES = st.sampled_from(
    [
        "sv",
        "sr",
        "sp",
        "st",
        "se",
        "sig",
        "skoid",
        "sktid",
        "skt",
        "ske",
        "sks",
        "skv",
        "sdd",
        "spr",
        "si",
        "ss",
        "srt",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_SAS_NAMES, st.text(max_size=40), max_size=12), st.booleans(), st.text(max_size=60))
def test_sas_parser_answers_only_storage_errors(query: dict[str, str], allow: bool, path: str) -> None:
    """Any SAS query is either a grant or a 4xx StorageError, never a crash; a random one never passes."""
    with pytest.raises(StorageError) as refused:
        verify_sas(
            {**query, "sig": query.get("sig", "x")}, account="acct", filesystem="fs", path=path,
            account_key="a2V5", allow_shared_key_access=allow, tenant=None,
            delegation_secret="c2VjcmV0", secure=True, now=time.time(),
        )  # fmt: skip
    assert 400 <= refused.value.status < 500


@given(st.text(max_size=40))
def test_sas_time_parser_returns_a_time_or_none(text: str) -> None:
    """SAS times parse to epoch seconds or None, whatever the text."""
    result = parse_time(text)
    assert result is None or isinstance(result, float)


def test_sas_time_parser_reads_the_formats_sas_use() -> None:
    """Seconds, fractions and plain dates are read as UTC."""
    expected = datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.UTC).timestamp()
    assert parse_time("2024-05-01T10:00:00Z") == expected
    assert parse_time("2024-05-01T10:00:00.0000000Z") == expected
    assert parse_time("2024-05-01") == expected - 36000
    assert parse_time("yesterday") is None


def test_entra_error_body_never_carries_the_assertion() -> None:
    """An EntraError body has Entra's fields only."""
    body = EntraError(400, "invalid_request", 90002, "Tenant 'x' not found.").body(time.time())
    assert body["error_codes"] == [90002] and body["error_description"].startswith("AADSTS90002: Tenant 'x'")
