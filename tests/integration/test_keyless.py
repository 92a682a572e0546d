"""Keyless destinations end to end: exports created through the management API with Microsoft Entra ID
(across tenants, and in the service's own), SAS or shared keys, on ADLS Gen2 (the HTTPS emulator, which
checks tokens, roles, SAS and shared-key access) and Blob (Azurite with OAuth over HTTPS), written by the
registered functions with the real SDKs and azure-identity credentials."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import ssl
import urllib.parse
import urllib.request
import uuid
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from fastapi.testclient import TestClient

from devstack.adls_emulator import CONTRIBUTOR
from devstack.keyless import LocalIdentity
from devstack.queue_runner import QueueRunner
from shared.model import ExportStatus
from shared.runtime import Runtime
from tests.api.conftest import api_settings, auth, issuer, writer
from tests.api.test_secrets import record_text
from tests.emulator.keyless import exchange_credential
from tests.integration.conftest import Traffic, all_lines, run_health_check
from tests.integration.keyless import (
    BLOB_KEY,
    DAY,
    BlobAccount,
    LakeAccount,
    api,
    blob_account,
    definition,
    destination,
    identity,
    keyless,
    keyless_environment,
    lake_account,
    oauth_blob,
    secure_emulator,
    utcnow,
)
from tests.receivers import Receiver
from tests.support import registered, trigger_batch

__all__ = [
    "api",
    "api_settings",
    "auth",
    "blob_account",
    "identity",
    "issuer",
    "keyless",
    "keyless_environment",
    "lake_account",
    "oauth_blob",
    "secure_emulator",
    "writer",
]

pytestmark = pytest.mark.integration

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def url(project: str, export_id: str, action: str = "") -> str:
    return f"/api/projects/{project}/exports/{export_id}" + (f"/{action}" if action else "")


def replay(runtime: Runtime) -> int:
    """The queue function replay_backlog on its queue, as the host runs it, until the queue is empty."""
    return QueueRunner(runtime.replay_queue, runtime.poison_queue, registered("replay_backlog")).drain()


def status(runtime: Runtime, project: str, export_id: str) -> ExportStatus:
    return runtime.exports.get(project, export_id)[0].status


def hints_text(view: dict[str, Any]) -> str:
    return " ".join([view.get("explanation") or "", *view.get("hints", [])])


# -- each method on each destination kind ------------------------------------------------------------


METHODS = [
    ("adls", "sharedKey"),
    ("adls", "sas"),
    ("adls", "sas-delegated"),
    ("adls", "entra"),
    ("adls", "entra-own-tenant"),
    ("blob", "sharedKey"),
    ("blob", "sas"),
    ("blob", "entra"),
]


def _adls_destination(
    method: str, lake: LakeAccount, identity: LocalIdentity, project: str
) -> tuple[dict[str, Any], str]:
    """The customer's side of each method, then the destination they give the API."""
    fs = lake.filesystem(f"fs{uuid.uuid4().hex[:10]}")
    path = f"{fs}/signals/"
    if method == "sharedKey":
        return destination("adls", lake.http_uri, path, sharedKey=lake.key), fs
    if method == "sas":
        return destination("adls", lake.https_uri, path, sas=lake.sas(fs, expiry=utcnow() + 30 * DAY)), fs
    if method == "sas-delegated":
        # A user delegation SAS, signed with a key got through Entra ID: it works with shared keys off.
        lake.grant()  # Get User Delegation Key needs a role at the account
        credential = exchange_credential(identity, _managed(identity), lake.tenant)
        blob = BlobServiceClient(lake.https_uri, credential=credential)
        key = blob.get_user_delegation_key(utcnow() - timedelta(minutes=5), utcnow() + 6 * DAY)
        lake.emulator.set_identity(lake.account, allow_shared_key_access=False)
        from azure.storage.filedatalake import FileSystemSasPermissions, generate_file_system_sas

        token = generate_file_system_sas(
            lake.account,
            fs,
            key,
            permission=FileSystemSasPermissions.from_string("racwdlm"),
            expiry=utcnow() + 6 * DAY,
        )
        return destination("adls", lake.https_uri, path, sas=token), fs
    if method.startswith("entra"):
        lake.claim(fs, "another-project", project)
    if method == "entra-own-tenant":
        lake.emulator.set_identity(lake.account, tenant=identity.ids.service_tenant)
        lake.grant(fs, principal=identity.ids.identity_principal_id)
        return destination("adls", lake.https_uri, path, entra={"tenantId": identity.ids.service_tenant}), fs
    lake.grant(fs)  # the role on the filesystem, as the onboarding says
    return destination("adls", lake.https_uri, path, entra={"tenantId": lake.tenant}), fs


def _managed(identity: LocalIdentity) -> Any:
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=identity.ids.identity_client_id)


def _blob_destination(
    method: str, blob: BlobAccount, lake: LakeAccount, project: str
) -> tuple[dict[str, Any], str]:
    container = blob.container(project)
    if method == "sharedKey":
        return destination("blob", blob.uri, container, sharedKey=BLOB_KEY), container
    if method == "sas":
        return destination(
            "blob", blob.uri, container, sas=blob.sas(container, expiry=utcnow() + 30 * DAY)
        ), container
    # Azurite's basic OAuth takes any valid token of the storage audience (no tenant or role check).
    return destination("blob", blob.uri, container, entra={"tenantId": lake.tenant}), container


@pytest.mark.parametrize(("kind", "method"), METHODS, ids=[f"{k}-{m}" for k, m in METHODS])
def test_each_method_on_each_destination_kind_exports_every_signal_exactly_once(
    kind: str,
    method: str,
    api: TestClient,
    writer: dict[str, str],
    project: str,
    lake_account: LakeAccount,
    blob_account: BlobAccount,
    identity: LocalIdentity,
) -> None:
    """Created through the API (the destination checked with the real SDK and credential first), each
    method writes every signal exactly once, a redelivered batch included; the answer names the method
    and holds no credential."""
    if kind == "adls":
        dest, place = _adls_destination(method, lake_account, identity, project)
    else:
        dest, place = _blob_destination(method, blob_account, lake_account, project)
    created = api.put(url(project, "keyless"), json=definition(dest), headers=writer)
    assert created.status_code == 201, created.text
    out = created.json()["destination"]
    assert out["authentication"] == method.split("-")[0]
    for secret in (dest.get("sharedKey"), dest.get("sas")):
        assert secret is None or secret not in created.text
    assert ("sasExpiresAt" in out) == ("sas" in dest) and "sas" not in out
    traffic = Traffic(project)
    batch = traffic.send(12)
    registered("export_signals")(trigger_batch(traffic.partition, batch))  # delivered again
    traffic.send(8, names=("purchase",))
    if method == "sas-delegated":  # the customer reads with the key again
        lake_account.emulator.set_identity(lake_account.account, allow_shared_key_access=True)
    files = lake_account.files(place) if kind == "adls" else blob_account.blobs(place)
    assert all_lines(files) == traffic.lines()
    assert set(all_lines(files).values()) == {1}


# -- Entra ID: the role removed while exporting ------------------------------------------------------


def test_a_role_removed_while_exporting_postpones_with_the_role_hint_and_resume_replays_the_backlog_once(
    api: TestClient, writer: dict[str, str], project: str, keyless: Runtime, lake_account: LakeAccount
) -> None:
    """The role removed, writes fail with AuthorizationPermissionMismatch: the export is postponed
    (`permission-missing`) with the role, the application's client id and the filesystem in its hints;
    resume is refused until the role is back, then the backlog is replayed exactly once."""
    fs = lake_account.filesystem("rolefs")
    lake_account.claim(fs, project)
    lake_account.grant(fs)
    dest = destination("adls", lake_account.https_uri, f"{fs}/out/", entra={"tenantId": lake_account.tenant})
    assert api.put(url(project, "lake"), json=definition(dest), headers=writer).status_code == 201
    traffic = Traffic(project)
    traffic.send(10)
    run_health_check()
    lake_account.revoke()
    traffic.send(15)
    run_health_check()
    assert status(keyless, project, "lake") is ExportStatus.POSTPONED
    traffic.send(5)  # postponed: straight to the backlog
    view = api.get(url(project, "lake", "health"), headers=writer).json()
    assert (
        view["cause"] == "permission-missing" and view["lastErrorCode"] == "AuthorizationPermissionMismatch"
    )
    words = hints_text(view)
    app_id = keyless.settings.identity.application_client_id
    assert "Storage Blob Data Contributor" in words and app_id in words
    assert f"containers/{fs}" in words and f'--assignee "{app_id}"' in words
    refused = api.post(url(project, "lake", "resume"), headers=writer)
    assert (
        refused.status_code == 409 and refused.json()["error"]["innererror"]["cause"] == "permission-missing"
    )
    lake_account.grant(fs)
    resumed = api.post(url(project, "lake", "resume"), headers=writer)
    assert resumed.status_code == 202, resumed.text
    replay(keyless)
    files = lake_account.files(fs)
    assert all_lines(files) == traffic.lines() and set(all_lines(files).values()) == {1}
    health = api.get(url(project, "lake", "health"), headers=writer).json()
    assert health["status"] == "active" and health["backlog"]["files"] == 0


# -- shared-key access switched off ------------------------------------------------------------------


def test_shared_key_switched_off_under_a_shared_key_export_postpones_with_the_entra_hint_and_switching_resumes(
    api: TestClient, writer: dict[str, str], project: str, keyless: Runtime, lake_account: LakeAccount
) -> None:
    """allowSharedKeyAccess switched off while a shared-key export runs: postponed
    (`shared-key-disabled`) with the advice to switch to Microsoft Entra ID; a PATCH to `entra` (after
    the role assignment) checks it, resumes, and the backlog is replayed exactly once."""
    fs = lake_account.filesystem("keyfs")
    lake_account.claim(fs, project)  # ahead of the switch: the customer's own step, with their key
    dest = destination("adls", lake_account.http_uri, f"{fs}/", sharedKey=lake_account.key)
    assert api.put(url(project, "keyed"), json=definition(dest), headers=writer).status_code == 201
    traffic = Traffic(project)
    traffic.send(6)
    run_health_check()
    lake_account.emulator.set_identity(lake_account.account, allow_shared_key_access=False)
    traffic.send(9)
    run_health_check()
    assert status(keyless, project, "keyed") is ExportStatus.POSTPONED
    view = api.get(url(project, "keyed", "health"), headers=writer).json()
    assert view["cause"] == "shared-key-disabled"
    assert view["lastErrorCode"] == "KeyBasedAuthenticationNotPermitted"
    assert "Microsoft Entra ID" in hints_text(view) and "entra" in hints_text(view)
    lake_account.grant(fs)
    switch = {"destination": {"uri": lake_account.https_uri, "entra": {"tenantId": lake_account.tenant}}}
    patched = api.patch(
        url(project, "keyed"), json=switch, headers={**writer, "Content-Type": "application/merge-patch+json"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["destination"]["authentication"] == "entra"
    assert patched.json()["destination"]["hasSharedKey"] is False
    assert patched.json()["status"] == "active"
    replay(keyless)
    traffic.send(4)
    lake_account.emulator.set_identity(lake_account.account, allow_shared_key_access=True)  # to read back
    files = lake_account.files(fs)
    assert all_lines(files) == traffic.lines() and set(all_lines(files).values()) == {1}


# -- consent -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["adls", "blob"])
def test_consent_missing_at_creation_is_a_400_with_the_consent_link_and_following_it_lets_the_export_be_created(
    kind: str,
    api: TestClient,
    writer: dict[str, str],
    project: str,
    keyless: Runtime,
    identity: LocalIdentity,
    lake_account: LakeAccount,
    blob_account: BlobAccount,
) -> None:
    """In a tenant that never consented, creating an Entra ID export (ADLS Gen2 or Blob) is refused
    before anything is stored: 400 DestinationConsentMissing, with the admin consent link; an
    administrator opening the link consents, and the same request then creates the export."""
    tenant = identity.customer_tenant(consented=False)
    if kind == "adls":
        lake_account.emulator.set_identity(lake_account.account, tenant=tenant)
        fs = lake_account.filesystem("consentfs")
        lake_account.claim(fs, project)
        dest = destination("adls", lake_account.https_uri, f"{fs}/", entra={"tenantId": tenant})
    else:  # Azurite checks no tenant nor role: the token request is what consent decides
        dest = destination(
            "blob", blob_account.uri, blob_account.container(project), entra={"tenantId": tenant}
        )
    refused = api.put(url(project, "consent"), json=definition(dest), headers=writer)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "DestinationConsentMissing" and error["innererror"]["cause"] == "consent-missing"
    link = error["innererror"]["adminConsentUrl"]
    assert link.startswith(f"{identity.entra.authority}/{tenant}/adminconsent?client_id=")
    assert link in error["message"] and any(link in d["message"] for d in error["details"])
    assert keyless.exports.find(project, "consent") is None
    context = ssl.create_default_context(cafile=str(identity.tls.ca_file))
    with urllib.request.urlopen(link, context=context, timeout=10) as consented:  # noqa: S310 (the local Entra ID)
        assert consented.status == 200
    if kind == "adls":
        lake_account.emulator.assign_role(
            lake_account.account, identity.principal_in(tenant), CONTRIBUTOR, fs
        )
    created = api.put(url(project, "consent"), json=definition(dest), headers=writer)
    assert created.status_code == 201, created.text


def test_an_account_of_another_tenant_than_the_export_names_is_refused_with_the_tenant_hint(
    api: TestClient, writer: dict[str, str], project: str, identity: LocalIdentity, lake_account: LakeAccount
) -> None:
    """The storage account answers a token of another tenant with a challenge naming its own; the
    service, signed in to the tenant the export names only, says which tenant it tried."""
    other = identity.customer_tenant()
    fs = lake_account.filesystem("elsewhere")
    lake_account.claim(fs, project)
    lake_account.grant(fs, principal=identity.principal_in(other))
    dest = destination("adls", lake_account.https_uri, f"{fs}/", entra={"tenantId": other})
    refused = api.put(url(project, "wrong"), json=definition(dest), headers=writer)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "DestinationAuthenticationFailed"
    assert error["innererror"]["storageErrorCode"] == "InvalidAuthenticationInfo"
    assert other in error["message"] and "tenantId" in error["message"]


# -- SAS expiry --------------------------------------------------------------------------------------


def test_a_sas_expiring_is_warned_of_before_postpones_the_export_after_and_a_new_sas_resumes_it(
    api: TestClient,
    writer: dict[str, str],
    project: str,
    keyless: Runtime,
    lake_account: LakeAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SAS three days from its expiry: the health view warns and the webhook is told once. Past it
    (the service's and the account's clocks moved on): postponed (`credential-expired`) with the advice
    to give a new SAS; a PATCH with a new one resumes and the backlog is replayed exactly once."""
    fs = lake_account.filesystem("sasfs")
    expires = utcnow() + 3 * DAY
    receiver = Receiver()
    try:
        dest = destination("adls", lake_account.https_uri, f"{fs}/", sas=lake_account.sas(fs, expiry=expires))
        document = definition(dest, notify={"webhook": receiver.url(), "secret": "s" * 16})
        assert api.put(url(project, "sas"), json=document, headers=writer).status_code == 201
        traffic = Traffic(project)
        traffic.send(5)
        run_health_check()
        run_health_check()  # warned once only
        view = api.get(url(project, "sas", "health"), headers=writer).json()
        assert view["status"] == "active" and view["credential"]["method"] == "sas"
        assert "expires" in view["credential"]["warning"] and fs in view["credential"]["warning"]
        notify = keyless.notify_queue  # shared with the module's other exports: what reaches ours counts
        QueueRunner(
            notify, keyless.queue(f"{notify.queue_name}-poison"), registered("notify_webhook")
        ).drain()
        (warning,) = [json.loads(call.body) for call in receiver.received]
        assert warning["type"] == "export.credential-expiring" and warning["expiresAt"]

        later = 4 * DAY.total_seconds()
        real = keyless.clock
        monkeypatch.setattr(keyless, "clock", lambda: real() + later)
        emulator_clock = lake_account.emulator.clock
        monkeypatch.setattr(lake_account.emulator, "clock", lambda: emulator_clock() + later)
        run_health_check()
        assert status(keyless, project, "sas") is ExportStatus.POSTPONED
        traffic.send(7)  # kept in the backlog
        view = api.get(url(project, "sas", "health"), headers=writer).json()
        assert view["cause"] == "credential-expired" and view["credential"]["expired"] is True
        assert "destination.sas" in hints_text(view) and "racwdlm" in hints_text(view)
        stale = api.post(url(project, "sas", "resume"), headers=writer)
        assert (
            stale.status_code == 409 and stale.json()["error"]["innererror"]["cause"] == "credential-expired"
        )

        fresh = lake_account.sas(fs, expiry=utcnow() + 30 * DAY)
        patched = api.patch(
            url(project, "sas"),
            json={"destination": {"sas": fresh}},
            headers={**writer, "Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["status"] == "active" and fresh not in patched.text
        replay(keyless)
        files = lake_account.files(fs)
        assert all_lines(files) == traffic.lines() and set(all_lines(files).values()) == {1}
    finally:
        receiver.close()


def test_the_accounts_own_refusal_of_an_expired_sas_is_credential_expired(
    api: TestClient,
    writer: dict[str, str],
    project: str,
    keyless: Runtime,
    lake_account: LakeAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the account's clock passed the SAS's expiry before the service's did, its refusal
    (403 AuthenticationFailed) is read as the expired SAS, not as a wrong one."""
    fs = lake_account.filesystem("skewfs")
    dest = destination(
        "adls", lake_account.https_uri, f"{fs}/", sas=lake_account.sas(fs, expiry=utcnow() + DAY)
    )
    assert api.put(url(project, "skew"), json=definition(dest), headers=writer).status_code == 201
    clock = lake_account.emulator.clock
    monkeypatch.setattr(lake_account.emulator, "clock", lambda: clock() + DAY.total_seconds() + 60)
    export, _ = keyless.exports.get(project, "skew")
    failure = keyless.destinations.probe(export.destination)
    assert failure is not None and failure.cause.value == "authentication-failed"
    monkeypatch.setattr(keyless, "clock", lambda: clock() + DAY.total_seconds() - 60)
    failure = keyless.destinations.probe(export.destination)
    assert failure is not None and failure.cause.value == "credential-expired"


# -- onboarding --------------------------------------------------------------------------------------


def test_onboarding_gives_the_consent_link_and_the_exact_role_assignment_for_a_tenant_and_destination(
    api: TestClient, writer: dict[str, str], project: str, keyless: Runtime, identity: LocalIdentity
) -> None:
    """For a customer's tenant: the application's client id, the admin consent link, the role
    assignment at the filesystem's (or container's) scope as an az command and Bicep, and the claim of the
    filesystem for the project; in the service's own tenant, the managed identity and no consent. Nothing
    is stored."""
    tenant = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    lake = {"type": "adls", "uri": "https://contoso.dfs.core.windows.net/", "path": "exports/signals/"}
    answer = api.post(
        f"/api/projects/{project}/onboarding",
        json={"destination": {**lake, "entra": {"tenantId": tenant}}},
        headers=writer,
    )
    assert answer.status_code == 200, answer.text
    out = answer.json()
    app_id = identity.ids.application_client_id
    assert out["applicationClientId"] == app_id and out["tenantId"] == tenant
    assert out["adminConsentUrl"] == f"{identity.entra.authority}/{tenant}/adminconsent?client_id={app_id}"
    role = out["roleAssignment"]
    assert (role["role"], role["principalClientId"], role["principalType"]) == (
        "Storage Blob Data Contributor",
        app_id,
        "application",
    )
    assert role["scope"].endswith("/storageAccounts/contoso/blobServices/default/containers/exports")
    assert role["azCommand"].startswith(f'az role assignment create --assignee "{app_id}"')
    assert "--name contoso" in role["azCommand"] and "containers/exports" in role["azCommand"]
    assert "name: 'contoso'" in role["bicep"] and "name: 'exports'" in role["bicep"]
    assert out["steps"][0].endswith(out["adminConsentUrl"])
    claim = out["claim"]
    assert (claim["metadata"], claim["value"]) == ("signalsexportprojects", project)
    assert claim["azCommand"] == (
        "az storage container metadata update --name exports --account-name contoso --auth-mode login "
        f"--metadata signalsexportprojects={project}"
    )
    assert any(step.endswith(claim["azCommand"]) for step in out["steps"])
    own = api.post(
        f"/api/projects/{project}/onboarding",
        json={
            "destination": {
                "type": "blob",
                "uri": "https://contoso.blob.core.windows.net/",
                "container": "signals",
                "entra": {"tenantId": identity.ids.service_tenant},
            }
        },
        headers=writer,
    ).json()
    assert own["applicationClientId"] == identity.ids.identity_client_id and "adminConsentUrl" not in own
    assert own["roleAssignment"]["principalType"] == "managedIdentity"
    assert keyless.exports.list(project) == []
    keyed = api.post(
        f"/api/projects/{project}/onboarding",
        json={"destination": {**lake, "sharedKey": "a" * 88}},
        headers=writer,
    )
    assert keyed.status_code == 400 and keyed.json()["error"]["target"] == "destination.entra"


def test_without_the_services_entra_settings_entra_destinations_are_refused_with_the_setting_named(
    service: Runtime, api_settings: Any, writer: dict[str, str], project: str
) -> None:
    """A service whose operator did not set up the application refuses Entra ID destinations in other
    tenants (400 EntraIdNotConfigured naming the settings) before any check."""
    from shared.api import create_api

    plain = TestClient(create_api(lambda: service.api, settings=api_settings), raise_server_exceptions=False)
    dest = destination(
        "adls",
        "https://contoso.dfs.core.windows.net/",
        "exports/",
        entra={"tenantId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
    )
    refused = plain.put(url(project, "entra"), json=definition(dest), headers=writer)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "EntraIdNotConfigured"
    assert "EXPORT_APP_CLIENT_ID" in refused.json()["error"]["message"]


# -- secrets -----------------------------------------------------------------------------------------


def test_sas_tokens_and_access_tokens_appear_in_no_response_log_or_stored_value(
    api: TestClient,
    writer: dict[str, str],
    project: str,
    keyless: Runtime,
    lake_account: LakeAccount,
    identity: LocalIdentity,
    azurite: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The life of a SAS export and an Entra ID export, failures included, logged at DEBUG (the SDKs'
    and azure-identity's records too): no response, log record or table value holds a SAS, its
    signature or an access token."""
    caplog.set_level(logging.DEBUG)
    merge = {**writer, "Content-Type": "application/merge-patch+json"}
    fs = lake_account.filesystem("secretfs")
    lake_account.claim(fs, project)
    lake_account.grant(fs)
    tokens = [lake_account.sas(fs, expiry=utcnow() + 20 * DAY) for _ in range(2)]
    weak = lake_account.sas(fs, expiry=utcnow() + 20 * DAY, permission="rl")
    responses = []

    def call(method: str, path: str, **kwargs: Any) -> Any:
        response = api.request(method, path, **kwargs)
        assert response.status_code < 500, response.text
        responses.append(response)
        return response

    sas_dest = destination("adls", lake_account.https_uri, f"{fs}/sas/", sas=tokens[0])
    entra_dest = destination(
        "adls", lake_account.https_uri, f"{fs}/entra/", entra={"tenantId": lake_account.tenant}
    )
    assert call("PUT", url(project, "s"), json=definition(sas_dest), headers=writer).status_code == 201
    assert call("PUT", url(project, "e"), json=definition(entra_dest), headers=writer).status_code == 201
    call("GET", url(project, "s"), headers=writer)
    call("GET", f"/api/projects/{project}/exports", headers=writer)
    call("PATCH", url(project, "s"), json={"destination": {"sas": tokens[1]}}, headers=merge)
    call("PATCH", url(project, "s"), json={"destination": {"sas": weak}}, headers=merge)  # lacks permissions
    call("PATCH", url(project, "s"), json={"destination": {"sas": tokens[1] + "&sr=b"}}, headers=merge)
    call(
        "PATCH",
        url(project, "s"),
        json={"destination": {"sas": tokens[1], "sharedKey": "a" * 88}},
        headers=merge,
    )
    call(
        "PUT",
        url(project, "x"),
        json=definition({**sas_dest, "uri": lake_account.http_uri + "x"}),
        headers=writer,
    )
    traffic = Traffic(project)
    traffic.send(4)
    run_health_check()
    lake_account.revoke()
    traffic.send(4)
    run_health_check()
    call("POST", url(project, "e", "resume"), headers=writer)
    call("GET", url(project, "e", "health"), headers=writer)
    call("GET", url(project, "s", "health"), headers=writer)
    call("POST", f"/api/projects/{project}/onboarding", json={"destination": entra_dest}, headers=writer)
    from tests.api.conftest import raw_entities

    entities = list(raw_entities(azurite))
    call("DELETE", url(project, "s"), headers=writer)

    issued = identity.directory.managed_identity_token(
        identity.ids.identity_client_id, "https://storage.azure.com"
    )
    assert JWT.search(issued), "the scan recognises the tokens the stand-ins issue"
    signatures = [dict(p.split("=", 1) for p in t.split("&"))["sig"] for t in [*tokens, weak]]
    secrets = [*tokens, weak, *signatures, *(urllib.parse.unquote(s) for s in signatures)]
    assert len(responses) == 14
    for response in responses:
        text = response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        assert not JWT.search(text), f"{response.request.method} {response.request.url} holds a token"
        for secret in secrets:
            assert secret not in text, f"{response.request.method} {response.request.url} leaks a SAS"
    assert caplog.records
    for record in caplog.records:
        text = record_text(record)
        assert not JWT.search(text), f"log record {record.name}: {record.msg!r} holds a token"
        for secret in secrets:
            assert secret not in text, f"log record {record.name}: {record.msg!r} leaks a SAS"
    for table, entity in entities:
        for name, value in entity.items():
            assert not JWT.search(str(value)), f"table {table}, property {name} holds a token"
            for secret in secrets:
                assert secret not in str(value), f"table {table}, property {name} holds a SAS"


# -- at rest -----------------------------------------------------------------------------------------


def test_a_sas_is_sealed_bound_to_its_method_and_resealed_after_a_service_key_rotation(
    keyless: Runtime, project: str, lake_account: LakeAccount
) -> None:
    """The stored row holds the SAS sealed (not even its signature in clear) and the method; a row whose
    method was changed to shared key no longer opens (ExportUnreadable, that export only); after a
    rotation of KEY_ENCRYPTION_KEY the SAS is resealed under the new key and still the same. An Entra ID
    export stores no secret at all."""
    from shared.exports import ExportUnreadable
    from shared.model import AdlsDestination, EntraId, Export
    from shared.sas import parse as parse_sas
    from shared.secrets import new_service_key

    token = lake_account.sas("fs", expiry=utcnow() + 10 * DAY)
    sas = AdlsDestination(lake_account.https_uri.rstrip("/"), "fs", "", parse_sas(token, "adls"))
    keyless.exports.put(Export(project, "sealed", sas))
    keyless.exports.put(
        Export(project, "tenant", AdlsDestination(sas.account_url, "fs", "", EntraId(lake_account.tenant)))
    )
    entity = keyless.exports_table.get_entity(project, "sealed")
    signature = dict(part.split("=", 1) for part in token.split("&"))["sig"]
    assert entity["auth"] == "sas" and signature not in entity["sealed_key"]
    assert keyless.exports_table.get_entity(project, "tenant")["sealed_key"] == ""
    keyless.exports_table.update_entity({"PartitionKey": project, "RowKey": "sealed", "auth": "sharedKey"})
    with pytest.raises(ExportUnreadable):
        keyless.exports.get(project, "sealed")
    assert keyless.exports.get(project, "tenant")[0].destination.credential == EntraId(lake_account.tenant)
    keyless.exports_table.update_entity({"PartitionKey": project, "RowKey": "sealed", "auth": "sas"})
    old, new = keyless.settings.key_encryption_key, new_service_key()
    rotated = Runtime(dataclasses.replace(keyless.settings, key_encryption_key=f"{new},{old}"))
    assert rotated.exports.reseal() >= 1
    assert rotated.keys.is_current(rotated.exports_table.get_entity(project, "sealed")["sealed_key"])
    assert rotated.exports.get(project, "sealed")[0].destination == sas
    back = Runtime(dataclasses.replace(keyless.settings, key_encryption_key=f"{old},{new}"))
    back.exports.reseal()  # the table is shared with later tests, which hold the old key only


# -- another customer's storage ----------------------------------------------------------------------


def test_a_project_cannot_have_the_service_write_into_storage_another_customer_gave_it_a_role_on(
    api: TestClient,
    auth: Any,
    writer: dict[str, str],
    project: str,
    keyless: Runtime,
    lake_account: LakeAccount,
) -> None:
    """The application holds a role on customer A's whole account, whose filesystem is claimed for A's
    project. Project B names that filesystem and A's tenant: refused (400 DestinationNotClaimed, with the
    claim command for B), and it cannot skip the check; naming a filesystem that does not exist there does
    not create it. Nothing is stored nor written. Claimed for B too, B may."""
    fs = lake_account.filesystem("theirs")
    lake_account.claim(fs, project)
    lake_account.grant()  # at the account's scope
    other = f"intruder-{uuid.uuid4().hex[:6]}"
    intruder = auth(other)
    tenant = {"tenantId": lake_account.tenant}
    dest = destination("adls", lake_account.https_uri, f"{fs}/stolen/", entra=tenant)
    refused = api.put(url(other, "grab"), json=definition(dest), headers=intruder)
    error = _refused_with(refused, "DestinationNotClaimed", "destination")
    assert "signalsexportprojects" in error["message"] and error["innererror"]["command"].endswith(
        f"--metadata signalsexportprojects={other}"
    )
    skipped = api.put(url(other, "grab") + "?checkDestination=false", json=definition(dest), headers=intruder)
    _refused_with(skipped, "CheckRequired", "checkDestination")
    absent = destination("adls", lake_account.https_uri, "newfs/stolen/", entra=tenant)
    missing = _refused_with(
        api.put(url(other, "grab"), json=definition(absent), headers=intruder),
        "DestinationNotFound",
        "destination",
    )
    assert "checkDestination=false" not in missing["message"]  # not an option with Entra ID
    assert not lake_account.keyed().get_file_system_client("newfs").exists()
    assert keyless.exports.find(other, "grab") is None
    assert lake_account.files(fs) == {}  # not even a probe file was written
    lake_account.claim(fs, project, other)
    assert api.put(url(other, "grab"), json=definition(dest), headers=intruder).status_code == 201


def _refused_with(response: Any, code: str, target: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error.get("target")) == (code, target), error
    return error
