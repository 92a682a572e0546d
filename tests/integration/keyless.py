"""Fixtures for keyless destinations end to end: the service's runtime with its Microsoft Entra ID
identity on the local stand-ins (Entra ID, the managed-identity endpoint, the local CA), customers' ADLS
Gen2 accounts on the HTTPS emulator in tenants of their own, a Blob account on Azurite with OAuth over
HTTPS, and the management API on that runtime. The credentials are azure-identity's, found through the
environment as on Functions: nothing is faked between the service and the stand-ins."""

from __future__ import annotations

import base64
import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from azure.storage.filedatalake import (
    DataLakeServiceClient,
    FileSystemSasPermissions,
    generate_file_system_sas,
)
from fastapi.testclient import TestClient

from devstack.adls_emulator import CONTRIBUTOR, AdlsEmulator
from devstack.azurite import Azurite
from devstack.keyless import LocalIdentity
from shared.api import create_api
from shared.api.config import ApiSettings
from shared.onboarding import CLAIM, ServiceIdentity
from shared.runtime import Runtime, use_runtime
from tests.emulator.keyless import identity, secure_emulator
from tests.integration.conftest import blobs_in, files_in

__all__ = ["identity", "secure_emulator"]

BLOB_ACCOUNT = "keylessblob"
BLOB_KEY = base64.b64encode(b"keyless blob account key 0001 xx").decode()
DAY = timedelta(days=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def oauth_blob(identity: LocalIdentity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's Blob service over HTTPS with `--oauth basic`: a customer Blob account that takes tokens."""
    location = Path(tmp_path_factory.mktemp("azurite-oauth"))
    with Azurite(
        location=location, accounts={BLOB_ACCOUNT: BLOB_KEY}, tls=identity.tls, oauth=True, blob_only=True
    ) as running:
        yield running


@pytest.fixture
def keyless_environment(identity: LocalIdentity, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the platform and the operator set on Functions, pointed at the stand-ins: IDENTITY_ENDPOINT,
    IDENTITY_HEADER, AZURE_AUTHORITY_HOST, and REQUESTS_CA_BUNDLE (the public CAs and the local one)."""
    for name, value in identity.environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def keyless(service: Runtime, identity: LocalIdentity, keyless_environment: None) -> Iterator[Runtime]:
    """The service's runtime with its Entra ID identity (the app settings api.bicep sets), installed as
    the one the functions use."""
    ids = identity.ids
    settings = dataclasses.replace(
        service.settings,
        identity=ServiceIdentity(
            application_client_id=ids.application_client_id,
            tenant_id=ids.service_tenant,
            identity_client_id=ids.identity_client_id,
            authority=identity.entra.authority,
        ),
        allow_private_webhooks=True,
    )
    runtime = Runtime(settings)
    use_runtime(runtime)
    yield runtime
    use_runtime(service)


@pytest.fixture
def api(keyless: Runtime, api_settings: ApiSettings) -> TestClient:
    """The management API on the keyless runtime."""
    return TestClient(create_api(lambda: keyless.api, settings=api_settings), raise_server_exceptions=False)


@dataclass
class LakeAccount:
    """A customer's ADLS Gen2 account on the HTTPS emulator, in a tenant of its own."""

    emulator: AdlsEmulator
    identity: LocalIdentity
    account: str
    key: str
    tenant: str

    @property
    def https_uri(self) -> str:
        return self.emulator.url(self.account, https=True) + "/"

    @property
    def http_uri(self) -> str:
        return self.emulator.url(self.account) + "/"

    @property
    def principal(self) -> str:
        """The application's object id in the account's tenant (what a role assignment names)."""
        return self.identity.principal_in(self.tenant)

    def keyed(self) -> DataLakeServiceClient:
        """The customer's own view, with the account key (over HTTP: the emulator checks it the same)."""
        return DataLakeServiceClient(self.http_uri, credential=self.key)

    def filesystem(self, name: str) -> str:
        """Create a filesystem (as the customer does before assigning a role on it)."""
        self.keyed().create_file_system(name)
        return name

    def claim(self, filesystem: str, *projects: str) -> None:
        """The customer claims the filesystem for projects (its metadata, which only its owner sets)."""
        metadata = {CLAIM: ",".join(projects)}
        self.keyed().get_file_system_client(filesystem).set_file_system_metadata(metadata)

    def grant(self, filesystem: str | None = None, principal: str | None = None) -> None:
        self.emulator.assign_role(self.account, principal or self.principal, CONTRIBUTOR, filesystem)

    def revoke(self, principal: str | None = None) -> None:
        self.emulator.remove_role(self.account, principal or self.principal)

    def sas(self, filesystem: str, *, expiry: datetime, permission: str = "racwdlm") -> str:
        return generate_file_system_sas(
            self.account,
            filesystem,
            self.key,
            permission=FileSystemSasPermissions.from_string(permission),
            expiry=expiry,
            start=utcnow() - timedelta(minutes=5),
        )

    def files(self, filesystem: str) -> dict[str, list[bytes]]:
        """Every file of a filesystem and its lines, read with the account key."""
        return files_in(self.keyed().get_file_system_client(filesystem))


@pytest.fixture
def lake_account(identity: LocalIdentity, secure_emulator: AdlsEmulator) -> Iterator[LakeAccount]:
    """A new account in a new tenant that consented to the application: no role yet."""
    account = f"kl{uuid.uuid4().hex[:12]}"
    key = base64.b64encode(os.urandom(32)).decode()
    secure_emulator.add_account(account, key)
    tenant = identity.customer_tenant()
    secure_emulator.set_identity(account, tenant=tenant)
    yield LakeAccount(secure_emulator, identity, account, key, tenant)
    secure_emulator.remove_account(account)


@dataclass
class BlobAccount:
    """The customer Blob account on Azurite with OAuth over HTTPS."""

    azurite: Azurite
    ca_file: str

    @property
    def uri(self) -> str:
        return self.azurite.url("blob", BLOB_ACCOUNT) + "/"

    def keyed(self) -> BlobServiceClient:
        credential = {"account_name": BLOB_ACCOUNT, "account_key": BLOB_KEY}
        return BlobServiceClient(self.uri, credential=credential, connection_verify=self.ca_file)

    def container(self, *claimed_for: str) -> str:
        """A new container; claimed for projects when some are named."""
        name = f"ct-{uuid.uuid4().hex[:10]}"
        self.keyed().create_container(name, metadata={CLAIM: ",".join(claimed_for)} if claimed_for else None)
        return name

    def sas(self, container: str, *, expiry: datetime) -> str:
        return generate_container_sas(
            BLOB_ACCOUNT,
            container,
            BLOB_KEY,
            permission=ContainerSasPermissions.from_string("racwdl"),
            expiry=expiry,
            start=utcnow() - timedelta(minutes=5),
        )

    def blobs(self, container: str) -> dict[str, list[bytes]]:
        return blobs_in(self.keyed().get_container_client(container))


@pytest.fixture
def blob_account(oauth_blob: Azurite, identity: LocalIdentity) -> BlobAccount:
    return BlobAccount(oauth_blob, str(identity.tls.ca_file))


def destination(kind: str, uri: str, place: str, **credential: Any) -> dict[str, Any]:
    """A destination document: `place` is the path (adls) or the container (blob)."""
    where = {"path": place} if kind == "adls" else {"container": place}
    return {"type": kind, "uri": uri, **where, **credential}


def definition(dest: dict[str, Any], **body: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"destination": dest, "signals": "all", **body}
    if dest["type"] == "adls":
        document.setdefault("granularity", "hour")
    return document


Headers = Callable[..., dict[str, str]]
