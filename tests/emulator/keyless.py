"""Fixtures for keyless access: the local identity stand-ins and an emulator that trusts them.

Each test gets an account of its own on one HTTPS emulator, in a customer tenant of its own, so role
assignments and switches never leak between tests.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.identity import ClientAssertionCredential, ManagedIdentityCredential
from azure.storage.filedatalake import DataLakeServiceClient

from devstack.adls_emulator import AdlsEmulator, TrustedKeys
from devstack.keyless import LocalIdentity

TOKEN_EXCHANGE = "api://AzureADTokenExchange/.default"


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentity]:
    """The local CA, Entra ID and managed-identity endpoint, for the module."""
    stack = LocalIdentity(Path(tmp_path_factory.mktemp("tls"))).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def secure_emulator(identity: LocalIdentity) -> Iterator[AdlsEmulator]:
    """The emulator over HTTP and HTTPS, trusting the local Entra ID's signing keys."""
    emulator = AdlsEmulator(
        accounts={}, tls=identity.tls.server_context(), trusted_keys=TrustedKeys(identity.directory.jwks())
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@dataclass
class Customer:
    """One customer: an account on the emulator, its key, its tenant, the application's principal there."""

    account: str
    key: str
    tenant: str
    principal: str
    emulator: AdlsEmulator

    @property
    def https_url(self) -> str:
        return self.emulator.url(self.account, https=True)

    @property
    def http_url(self) -> str:
        return self.emulator.url(self.account)


@pytest.fixture
def customer(identity: LocalIdentity, secure_emulator: AdlsEmulator) -> Iterator[Customer]:
    """A new account in a new tenant that consented to the export application (no role yet)."""
    account = f"acct{uuid.uuid4().hex[:12]}"
    key = base64.b64encode(os.urandom(32)).decode()
    secure_emulator.add_account(account, key)
    tenant = identity.customer_tenant()
    secure_emulator.set_identity(account, tenant=tenant)
    yield Customer(account, key, tenant, identity.principal_in(tenant), secure_emulator)
    secure_emulator.remove_account(account)


@pytest.fixture
def managed_identity(identity: LocalIdentity, monkeypatch: pytest.MonkeyPatch) -> ManagedIdentityCredential:
    """The service's managed identity, found as on App Service: IDENTITY_ENDPOINT and IDENTITY_HEADER."""
    for name, value in identity.endpoint.environment().items():
        monkeypatch.setenv(name, value)
    return ManagedIdentityCredential(client_id=identity.ids.identity_client_id)


def exchange_credential(
    identity: LocalIdentity, managed: ManagedIdentityCredential, tenant: str
) -> ClientAssertionCredential:
    """What the service builds for a customer tenant: the application, its assertion the identity's token."""
    return ClientAssertionCredential(
        tenant,
        identity.ids.application_client_id,
        lambda: managed.get_token(TOKEN_EXCHANGE).token,
        authority=identity.entra.authority,
        connection_verify=str(identity.tls.ca_file),
    )


def lake_client(
    url: str, credential: object, identity: LocalIdentity, **kwargs: object
) -> DataLakeServiceClient:
    """A Data Lake client that trusts the local CA and does not retry (so refusals surface at once)."""
    return DataLakeServiceClient(
        url, credential=credential, connection_verify=str(identity.tls.ca_file), retry_total=0, **kwargs
    )
