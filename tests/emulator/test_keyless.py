"""Keyless access to the ADLS Gen2 emulator with the real SDKs and real azure-identity credentials:
Entra ID tokens across tenants with role assignments, shared-key access switched off, and SAS."""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
import time
from functools import partial

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientAssertionCredential, ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.filedatalake import (
    DataLakeServiceClient,
    FileSystemClient,
    FileSystemSasPermissions,
    generate_file_system_sas,
)

from devstack.adls_emulator import CONTRIBUTOR, OWNER, READER, AdlsEmulator
from devstack.keyless import LocalIdentity
from tests.emulator.keyless import Customer, exchange_credential, lake_client

DAY = datetime.timedelta(days=1)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _export_writes(fs: FileSystemClient, name: str) -> bytes:
    """The service's export path on one file: create if missing, two positioned appends with flush, read
    back, properties, a temporary file renamed over nothing (If-None-Match), delete."""
    file = fs.get_file_client(f"signals/2024/05/01/10/{name}.jsonl")
    file.create_file(match_condition=MatchConditions.IfMissing)
    file.append_data(b'{"n":1}\n', offset=0, length=8, flush=True)
    file.append_data(b'{"n":2}\n', offset=8, length=8, flush=True)
    assert file.get_file_properties().size == 16
    temp = fs.get_file_client(f"signals/2024/05/01/10/{name}_replay-0.jsonl.tmp")
    temp.create_file(match_condition=MatchConditions.IfMissing)
    temp.append_data(b'{"n":0}\n', offset=0, length=8, flush=True)
    temp.rename_file(
        f"{fs.file_system_name}/signals/2024/05/01/10/{name}_replay-0.jsonl",
        match_condition=MatchConditions.IfMissing,
    )
    assert sorted(
        p.name.rsplit("/", 1)[-1] for p in fs.get_paths(path="signals", recursive=True) if not p.is_directory
    ) == [
        f"{name}.jsonl",
        f"{name}_replay-0.jsonl",
    ]
    data = file.download_file(offset=8, length=8).readall()
    fs.get_file_client(f"signals/2024/05/01/10/{name}_replay-0.jsonl").delete_file()
    return data


# -- Entra ID: a consented customer tenant, the application's principal, roles -------------------------


def test_exchanged_token_with_contributor_role_runs_the_export_path(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """With Storage Blob Data Contributor on the account, the managed identity's assertion exchanged for
    a token in the customer's tenant runs every operation the export uses, on dfs and on blob."""
    customer.emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR)
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    with lake_client(customer.https_url, credential, identity) as service:
        fs = service.create_file_system("exports")
        assert _export_writes(fs, "lake1_0") == b'{"n":2}\n'
        assert fs.get_file_system_properties().name == "exports"
    blob = BlobServiceClient(
        customer.https_url, credential=credential, connection_verify=str(identity.tls.ca_file)
    )
    assert blob.get_container_client("exports").get_container_properties().name == "exports"


def test_environment_alone_points_the_credentials_at_the_stand_ins(
    identity: LocalIdentity, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AZURE_AUTHORITY_HOST, REQUESTS_CA_BUNDLE and the identity endpoint set, credentials and clients
    built exactly as in Azure (no authority, no CA argument) reach the local stand-ins."""
    for name, value in identity.environment().items():
        monkeypatch.setenv(name, value)
    customer.emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR, "env")
    managed = ManagedIdentityCredential(client_id=identity.ids.identity_client_id)
    credential = ClientAssertionCredential(
        customer.tenant,
        identity.ids.application_client_id,
        lambda: managed.get_token("api://AzureADTokenExchange/.default").token,
    )
    with DataLakeServiceClient(customer.https_url, credential=credential) as service:
        customer.emulator.set_identity(customer.account, allow_shared_key_access=True)
        DataLakeServiceClient(customer.http_url, credential=customer.key).create_file_system("env")
        file = service.get_file_system_client("env").get_file_client("a.jsonl")
        file.create_file()
        file.append_data(b"x\n", offset=0, length=2, flush=True)
        assert file.download_file().readall() == b"x\n"


def test_managed_identity_in_the_service_tenant_uses_its_own_token(
    identity: LocalIdentity,
    secure_emulator: AdlsEmulator,
    customer: Customer,
    managed_identity: ManagedIdentityCredential,
) -> None:
    """An account in the service's own tenant takes the managed identity's storage token directly."""
    secure_emulator.set_identity(customer.account, tenant=identity.ids.service_tenant)
    secure_emulator.assign_role(customer.account, identity.ids.identity_principal_id, CONTRIBUTOR)
    with lake_client(customer.https_url, managed_identity, identity) as service:
        fs = service.create_file_system("own")
        assert _export_writes(fs, "own_1") == b'{"n":2}\n'


def test_principal_without_role_gets_authorization_permission_mismatch(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """A valid token whose principal has no role is refused 403 AuthorizationPermissionMismatch."""
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    with (
        lake_client(customer.https_url, credential, identity) as service,
        pytest.raises(HttpResponseError) as refused,
    ):
        service.create_file_system("norole")
    assert refused.value.status_code == 403
    assert refused.value.error_code == "AuthorizationPermissionMismatch"
    assert "not authorized to perform this operation using this permission" in str(refused.value)


def test_role_removed_while_running_refuses_the_next_write_and_given_back_works(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """Removing the role takes effect on the next request (same token); assigning it again restores writes."""
    emulator = customer.emulator
    emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR)
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    with lake_client(customer.https_url, credential, identity) as service:
        file = service.create_file_system("live").get_file_client("f.jsonl")
        file.create_file()
        file.append_data(b"1\n", offset=0, length=2, flush=True)
        assert emulator.remove_role(customer.account, customer.principal) == 1
        with pytest.raises(HttpResponseError) as refused:
            file.append_data(b"2\n", offset=2, length=2, flush=True)
        assert refused.value.error_code == "AuthorizationPermissionMismatch"
        emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR)
        file.append_data(b"2\n", offset=2, length=2, flush=True)
        assert file.download_file().readall() == b"1\n2\n"


def test_filesystem_scope_and_reader_role_grant_only_what_they_name(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """Contributor on one filesystem writes there only; Reader reads but cannot write; neither lists the
    account's filesystems (an account-level operation)."""
    emulator = customer.emulator
    with DataLakeServiceClient(customer.http_url, credential=customer.key) as keyed:
        keyed.create_file_system("mine").get_file_client("seed.txt").upload_data(b"seed", overwrite=True)
        keyed.create_file_system("theirs")
    emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR, "mine")
    emulator.assign_role(customer.account, customer.principal, READER, "theirs")
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    with lake_client(customer.https_url, credential, identity) as service:
        service.get_file_system_client("mine").get_file_client("new.txt").upload_data(b"ok", overwrite=True)
        assert service.get_file_system_client("theirs").get_file_system_properties().name == "theirs"
        for attempt in (
            lambda: (
                service.get_file_system_client("theirs")
                .get_file_client("x.txt")
                .upload_data(b"no", overwrite=True)
            ),
            lambda: list(service.list_file_systems()),
            lambda: service.create_file_system("another"),
        ):
            with pytest.raises(HttpResponseError) as refused:
                attempt()
            assert refused.value.error_code == "AuthorizationPermissionMismatch"


def test_setting_acls_needs_the_owner_role(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """Contributor cannot change a path's permissions; Owner can (blobs/modifyPermissions)."""
    customer.emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR)
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    with lake_client(customer.https_url, credential, identity) as service:
        file = service.create_file_system("acl").get_file_client("f")
        file.create_file()
        with pytest.raises(HttpResponseError) as refused:
            file.set_access_control(permissions="rwx------")
        assert refused.value.error_code == "AuthorizationPermissionMismatch"
        customer.emulator.assign_role(customer.account, customer.principal, OWNER, "acl")
        file.set_access_control(permissions="rwx------")
        assert file.get_access_control()["permissions"] == "rwx------"


def test_token_of_another_tenant_fails_issuer_validation_and_the_sdk_asks_for_the_accounts_tenant(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """A token of another (consented) tenant is answered 401 InvalidAuthenticationInfo with a challenge
    naming the account's tenant; the SDK asks the credential for that tenant, which a credential pinned
    to one tenant refuses (ClientAuthenticationError from azure-identity, the 401 as its cause)."""
    other = identity.customer_tenant()
    customer.emulator.assign_role(customer.account, identity.principal_in(other), CONTRIBUTOR)
    credential = exchange_credential(identity, managed_identity, other)
    with (
        lake_client(customer.https_url, credential, identity) as service,
        pytest.raises(ClientAuthenticationError) as refused,
    ):
        service.create_file_system("elsewhere")
    assert customer.tenant in str(refused.value)  # "not configured to acquire tokens for tenant <account's>"
    cause = refused.value.__cause__
    assert isinstance(cause, HttpResponseError) and cause.response is not None
    assert cause.response.status_code == 401
    assert cause.response.headers["x-ms-error-code"] == "InvalidAuthenticationInfo"
    assert f"login.microsoftonline.com/{customer.tenant}/" in cause.response.headers["WWW-Authenticate"]


def test_token_of_another_tenant_on_the_wire(identity: LocalIdentity, customer: Customer) -> None:
    """On the wire: 401 InvalidAuthenticationInfo, the challenge, and the issuer detail (blob XML)."""
    other = identity.customer_tenant()
    token = identity.directory.access_token(
        tenant=other,
        resource="https://storage.azure.com",
        client_id=identity.ids.application_client_id,
        object_id=identity.principal_in(other),
    )
    status, headers, body = _raw(identity, customer, "GET", "?comp=list", token)
    assert status == 401 and headers["x-ms-error-code"] == "InvalidAuthenticationInfo"
    assert headers["WWW-Authenticate"] == (
        f"Bearer authorization_uri=https://login.microsoftonline.com/{customer.tenant}/oauth2/authorize "
        "resource_id=https://storage.azure.com"
    )
    assert (
        "<AuthenticationErrorDetail>Issuer validation failed. Issuer did not match.</AuthenticationErrorDetail>"
        in body
    )


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"exp": -7200, "nbf": -10800}, "Lifetime validation failed. The token is expired."),
        ({"nbf": 3600, "exp": 7200}, "Lifetime validation failed. The token is not yet valid."),
        ({"aud": "https://vault.azure.net"}, "Audience validation failed. Audience did not match."),
        (
            {"aud": "https://otheraccount.blob.core.windows.net"},
            "Audience validation failed. Audience did not match.",
        ),
    ],
)
def test_token_checks_answer_401_with_the_detail(
    identity: LocalIdentity, customer: Customer, claims: dict[str, object], detail: str
) -> None:
    """Expired, not yet valid, or for another audience: 401 InvalidAuthenticationInfo with the detail."""
    now = int(time.time())
    base = {
        "aud": "https://storage.azure.com",
        "iss": f"https://sts.windows.net/{customer.tenant}/",
        "tid": customer.tenant,
        "oid": customer.principal,
        "appid": identity.ids.application_client_id,
        "nbf": now - 60,
        "exp": now + 3600,
    }
    base.update({k: now + v if k in ("exp", "nbf") and isinstance(v, int) else v for k, v in claims.items()})
    customer.emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR)
    status, headers, body = _raw(identity, customer, "GET", "?comp=list", identity.directory.mint(base))
    assert (status, headers["x-ms-error-code"]) == (401, "InvalidAuthenticationInfo")
    assert f"<AuthenticationErrorDetail>{detail}</AuthenticationErrorDetail>" in body


def test_token_signed_by_an_untrusted_key_is_refused(identity: LocalIdentity, customer: Customer) -> None:
    """A token with the right claims but another directory's signature fails signature validation."""
    from devstack.entra import Directory

    forged = Directory().access_token(
        tenant=customer.tenant,
        resource="https://storage.azure.com",
        client_id=identity.ids.application_client_id,
        object_id=customer.principal,
    )
    customer.emulator.assign_role(customer.account, customer.principal, OWNER)
    status, headers, body = _raw(identity, customer, "GET", "?comp=list", forged)
    assert (status, headers["x-ms-error-code"]) == (401, "InvalidAuthenticationInfo")
    assert "Signature validation failed" in body


def test_expired_token_from_the_sdk_surfaces_invalid_authentication_info(
    identity: LocalIdentity,
    customer: Customer,
    managed_identity: ManagedIdentityCredential,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tokens that are already expired (the directory's clock two hours behind) fail after the SDK's one
    retry on the challenge, with error_code InvalidAuthenticationInfo."""
    monkeypatch.setattr(identity.directory, "clock", lambda: time.time() - 7200)
    customer.emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR)
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    with (
        lake_client(customer.https_url, credential, identity) as service,
        pytest.raises(ClientAuthenticationError) as refused,
    ):
        service.create_file_system("late")
    assert refused.value.status_code == 401
    assert refused.value.error_code == "InvalidAuthenticationInfo"


def test_bearer_token_is_never_sent_over_http(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """The Storage SDK refuses a token credential for an http:// URL (as azure-core's bearer policy
    would), and the emulator's HTTP listener refuses a token sent anyway with 403 AuthenticationFailed."""
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    with pytest.raises(ValueError, match="only supported with HTTPS"):
        lake_client(customer.http_url, credential, identity)
    token = credential.get_token("https://storage.azure.com/.default").token
    connection = http.client.HTTPConnection("127.0.0.1", customer.emulator.port, timeout=10)
    connection.request("GET", f"/{customer.account}?comp=list", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    assert (response.status, response.getheader("x-ms-error-code")) == (403, "AuthenticationFailed")
    assert b"not allowed with HTTP" in response.read()


# -- shared-key access switched off --------------------------------------------------------------------


def test_shared_key_off_refuses_key_and_key_signed_sas_but_not_entra(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """allowSharedKeyAccess false: SharedKey and a service SAS get 403 KeyBasedAuthenticationNotPermitted
    (dfs and blob); Entra ID keeps working."""
    emulator = customer.emulator
    with DataLakeServiceClient(customer.http_url, credential=customer.key) as keyed:
        keyed.create_file_system("data")
    sas = generate_file_system_sas(
        customer.account,
        "data",
        customer.key,
        permission=FileSystemSasPermissions(read=True, write=True),
        expiry=_utcnow() + DAY,
    )
    emulator.set_identity(customer.account, allow_shared_key_access=False)
    with DataLakeServiceClient(customer.http_url, credential=customer.key, retry_total=0) as keyed:
        with pytest.raises(HttpResponseError) as dfs_refused:
            list(keyed.get_file_system_client("data").get_paths())
        with pytest.raises(HttpResponseError) as blob_refused:
            keyed.get_file_system_client("data").get_file_system_properties()
    fs = FileSystemClient(customer.http_url, "data", credential=sas, retry_total=0)
    with pytest.raises(HttpResponseError) as sas_refused:
        fs.get_file_client("f").create_file()
    for refused in (dfs_refused, blob_refused, sas_refused):
        assert refused.value.status_code == 403
        assert refused.value.error_code == "KeyBasedAuthenticationNotPermitted"
    assert "Key based authentication is not permitted on this storage account." in str(dfs_refused.value)
    emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR, "data")
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    with lake_client(customer.https_url, credential, identity) as service:
        service.get_file_system_client("data").get_file_client("f").upload_data(b"entra", overwrite=True)


# -- SAS -----------------------------------------------------------------------------------------------


def _keyed_filesystem(customer: Customer, name: str) -> None:
    with DataLakeServiceClient(customer.http_url, credential=customer.key) as keyed:
        keyed.create_file_system(name)


def test_service_sas_runs_the_export_path(customer: Customer) -> None:
    """A filesystem SAS (service SAS, sr=c) with racwdlm runs the export's operations, over HTTP too; as in
    Azure, it cannot read the filesystem's own properties."""
    _keyed_filesystem(customer, "sas")
    sas = generate_file_system_sas(
        customer.account,
        "sas",
        customer.key,
        permission=FileSystemSasPermissions(
            read=True, add=True, create=True, write=True, delete=True, list=True, move=True
        ),
        expiry=_utcnow() + DAY,
        start=_utcnow() - datetime.timedelta(minutes=5),
    )
    fs = FileSystemClient(customer.http_url, "sas", credential=sas, retry_total=0)
    assert _export_writes(fs, "sas_0") == b'{"n":2}\n'
    with pytest.raises(HttpResponseError) as refused:  # a container SAS cannot read the container's own
        fs.get_file_system_properties()
    assert (refused.value.status_code, refused.value.error_code) == (403, "AuthorizationFailure")


@pytest.mark.parametrize(
    ("permission", "code"),
    [
        (FileSystemSasPermissions(read=True, list=True), "AuthorizationPermissionMismatch"),
        (
            FileSystemSasPermissions(read=True, write=True, create=True, list=True),
            "AuthorizationPermissionMismatch",
        ),
    ],
)
def test_sas_missing_a_permission_gets_authorization_permission_mismatch(
    customer: Customer, permission: FileSystemSasPermissions, code: str
) -> None:
    """Without w the first write fails; without m the rename fails: 403 AuthorizationPermissionMismatch."""
    _keyed_filesystem(customer, "perm")
    sas = generate_file_system_sas(
        customer.account, "perm", customer.key, permission=permission, expiry=_utcnow() + DAY
    )
    fs = FileSystemClient(customer.http_url, "perm", credential=sas, retry_total=0)
    if permission.write:
        fs.get_file_client("t.tmp").create_file()
        attempt = partial(
            fs.get_file_client("t.tmp").rename_file, "perm/t.jsonl", match_condition=MatchConditions.IfMissing
        )
    else:
        attempt = fs.get_file_client("f").create_file
    with pytest.raises(HttpResponseError) as refused:
        attempt()
    assert (refused.value.status_code, refused.value.error_code) == (403, code)


def test_expired_sas_gets_authentication_failed_with_the_time_frame(customer: Customer) -> None:
    """A SAS past its expiry: 403 AuthenticationFailed, "Signature not valid in the specified time frame"."""
    _keyed_filesystem(customer, "old")
    sas = generate_file_system_sas(
        customer.account,
        "old",
        customer.key,
        permission=FileSystemSasPermissions(read=True),
        start=_utcnow() - 2 * DAY,
        expiry=_utcnow() - DAY,
    )
    fs = FileSystemClient(customer.http_url, "old", credential=sas, retry_total=0)
    with pytest.raises(ClientAuthenticationError) as refused:
        fs.get_file_system_properties()
    assert (refused.value.status_code, refused.value.error_code) == (403, "AuthenticationFailed")
    container = BlobServiceClient(customer.http_url, credential=sas, retry_total=0).get_container_client(
        "old"
    )
    with pytest.raises(ClientAuthenticationError) as on_blob:
        container.get_container_properties()
    assert "Signature not valid in the specified time frame" in str(on_blob.value)


def test_sas_with_a_wrong_signature_or_for_another_filesystem_fails_authentication(
    customer: Customer,
) -> None:
    """Signed with another key, or used on another filesystem: 403 AuthenticationFailed, signature mismatch."""
    _keyed_filesystem(customer, "one")
    _keyed_filesystem(customer, "two")
    wrong_key = generate_file_system_sas(
        customer.account,
        "one",
        "d3Jvbmcga2V5IG9mIHRoaXJ0eS10d28gYnl0ZXMhISE=",
        permission=FileSystemSasPermissions(read=True),
        expiry=_utcnow() + DAY,
    )
    for_one = generate_file_system_sas(
        customer.account,
        "one",
        customer.key,
        permission=FileSystemSasPermissions(read=True),
        expiry=_utcnow() + DAY,
    )
    for name, sas in (("one", wrong_key), ("two", for_one)):
        container = BlobServiceClient(customer.http_url, credential=sas, retry_total=0).get_container_client(
            name
        )
        with pytest.raises(ClientAuthenticationError) as refused:
            container.get_container_properties()
        assert refused.value.error_code == "AuthenticationFailed"
        assert "Signature did not match" in str(refused.value)
    assert customer.key not in str(refused.value)


def test_user_delegation_sas_works_with_shared_key_off_and_follows_the_roles(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """A user delegation key got with a token signs a filesystem SAS that works with shared keys off; it
    stops when the key holder loses the role or the account revokes its delegation keys."""
    emulator = customer.emulator
    _keyed_filesystem(customer, "udsas")
    emulator.set_identity(customer.account, allow_shared_key_access=False)
    emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR)
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    blob = BlobServiceClient(
        customer.https_url, credential=credential, connection_verify=str(identity.tls.ca_file)
    )
    key = blob.get_user_delegation_key(_utcnow() - datetime.timedelta(minutes=5), _utcnow() + DAY)
    assert (key.signed_oid, key.signed_tid) == (customer.principal, customer.tenant)
    sas = generate_file_system_sas(
        customer.account,
        "udsas",
        key,
        expiry=_utcnow() + DAY,
        permission=FileSystemSasPermissions(
            read=True, add=True, create=True, write=True, delete=True, list=True, move=True
        ),
    )
    fs = FileSystemClient(customer.http_url, "udsas", credential=sas, retry_total=0)
    assert _export_writes(fs, "ud_0") == b'{"n":2}\n'
    emulator.remove_role(customer.account, customer.principal)
    with pytest.raises(HttpResponseError) as no_role:
        fs.get_file_client("x").create_file()
    assert no_role.value.error_code == "AuthorizationPermissionMismatch"
    emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR)
    fs.get_file_client("x").create_file()
    emulator.revoke_user_delegation_keys(customer.account)
    with pytest.raises(ClientAuthenticationError) as revoked:
        fs.get_file_client("x").get_file_properties()
    assert revoked.value.error_code == "AuthenticationFailed"


def test_user_delegation_key_needs_a_token_and_an_account_scope_role(
    identity: LocalIdentity, customer: Customer, managed_identity: ManagedIdentityCredential
) -> None:
    """Get User Delegation Key with the account key is refused; with a token it needs a role at the account."""
    keyed = BlobServiceClient(customer.http_url, credential=customer.key, retry_total=0)
    with pytest.raises(ClientAuthenticationError) as with_key:
        keyed.get_user_delegation_key(_utcnow(), _utcnow() + DAY)
    assert with_key.value.error_code == "AuthenticationFailed"
    customer.emulator.assign_role(customer.account, customer.principal, CONTRIBUTOR, "onlyhere")
    credential = exchange_credential(identity, managed_identity, customer.tenant)
    blob = BlobServiceClient(
        customer.https_url, credential=credential, connection_verify=str(identity.tls.ca_file), retry_total=0
    )
    with pytest.raises(HttpResponseError) as scoped:
        blob.get_user_delegation_key(_utcnow(), _utcnow() + DAY)
    assert scoped.value.error_code == "AuthorizationPermissionMismatch"
    customer.emulator.assign_role(customer.account, customer.principal, READER)
    with pytest.raises(HttpResponseError) as too_long:
        blob.get_user_delegation_key(_utcnow(), _utcnow() + 8 * DAY)
    assert too_long.value.status_code == 400


# -- control endpoint ----------------------------------------------------------------------------------


def test_control_endpoint_sets_tenant_shared_key_and_roles(customer: Customer) -> None:
    """The control endpoint sets the tenant and allowSharedKeyAccess, adds and removes role assignments,
    and refuses malformed bodies with 400."""
    port = customer.emulator.port

    def call(method: str, what: str, body: object | None = None) -> tuple[int, object]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        payload = None if body is None else json.dumps(body).encode()
        connection.request(method, f"/__emulator/accounts/{customer.account}/{what}", body=payload)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None

    assert call("PATCH", "identity", {"allowSharedKeyAccess": False})[0] == 200
    assert (
        call(
            "POST",
            "roleAssignments",
            {"principalId": customer.principal, "role": "Storage Blob Data Reader", "filesystem": "fs"},
        )[0]
        == 201
    )
    status, identity_view = call("GET", "identity")
    assert status == 200 and identity_view == {
        "tenant": customer.tenant,
        "allowSharedKeyAccess": False,
        "roleAssignments": [{"principalId": customer.principal, "role": READER, "filesystem": "fs"}],
    }
    assert call("DELETE", "roleAssignments", {"principalId": customer.principal})[0] == 204
    assert call("DELETE", "roleAssignments", {"principalId": customer.principal})[0] == 404
    for bad in (
        {"principalId": "not-a-guid", "role": READER},
        {"principalId": customer.principal, "role": "Admin"},
        [1],
    ):
        assert call("POST", "roleAssignments", bad)[0] == 400
    assert call("PATCH", "identity", {"allowSharedKeyAccess": "no"})[0] == 400
    assert call("PATCH", "identity", {"tenant": "nope"})[0] == 400


def _raw(
    identity: LocalIdentity, customer: Customer, method: str, query: str, token: str
) -> tuple[int, dict[str, str], str]:
    context = ssl.create_default_context(cafile=str(identity.tls.ca_file))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", customer.emulator.https_port, timeout=10, context=context
    )
    connection.request(
        method,
        f"/{customer.account}{query}",
        headers={
            "Authorization": f"Bearer {token}",
            "x-ms-version": "2026-02-06",
            "Accept": "application/xml",
        },
    )
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read().decode("utf-8-sig")
