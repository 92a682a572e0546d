"""The local storage (what the local host and `scripts/run storage` start) with its keyless stand-ins."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
from azure.identity import ClientAssertionCredential, ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.filedatalake import DataLakeServiceClient

from devstack.host import LAKE_ACCOUNT, LocalStorage


def test_local_storage_serves_a_keyless_export_and_keeps_its_identities_across_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer ADLS Gen2 account is in a consented tenant of its own; once the customer assigns the
    role (control endpoint) the service's credentials, found through the environment alone, write to it
    and to the keyless Blob account; a restart keeps the tenant, the application and the CA."""
    storage = LocalStorage(tmp_path, 0).start()
    try:
        keyless = storage.keyless_status()
        assert storage.keyless is not None
        for name, value in storage.keyless.identity.environment().items():
            monkeypatch.setenv(name, value)
        connection = http.client.HTTPConnection("127.0.0.1", storage.ports["lake"], timeout=10)
        role = {"principalId": keyless["lakePrincipal"], "role": "Storage Blob Data Contributor"}
        connection.request(
            "POST", f"/__emulator/accounts/{LAKE_ACCOUNT}/roleAssignments", body=json.dumps(role)
        )
        assert connection.getresponse().status == 201
        managed = ManagedIdentityCredential(client_id=keyless["managedIdentityClientId"])

        def credential(tenant: str) -> ClientAssertionCredential:
            return ClientAssertionCredential(
                tenant,
                keyless["applicationClientId"],
                lambda: managed.get_token("api://AzureADTokenExchange/.default").token,
            )

        with DataLakeServiceClient(
            keyless["lakeHttps"], credential=credential(keyless["lakeTenant"])
        ) as lake:
            lake.create_file_system("keyless").get_file_client("a.jsonl").upload_data(b"x\n", overwrite=True)
        blob = BlobServiceClient(keyless["keylessBlob"], credential=credential(keyless["lakeTenant"]))
        blob.create_container("keyless").get_blob_client("b.blob").create_append_blob()
    finally:
        storage.stop()
    again = LocalStorage(tmp_path, 0).start()
    try:
        after = again.keyless_status()
        for name in (
            "lakeTenant",
            "lakePrincipal",
            "applicationClientId",
            "managedIdentityClientId",
            "caFile",
        ):
            assert after[name] == keyless[name], name
        assert (
            again.lake.identity(LAKE_ACCOUNT)["roleAssignments"][0]["principalId"] == keyless["lakePrincipal"]
        )
    finally:
        again.stop()
