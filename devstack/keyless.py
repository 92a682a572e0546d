"""The local identity stand-ins started together: the CA, the local Entra ID, the managed-identity
endpoint, and the directory they share (the service's tenant, its managed identity, the multi-tenant
export application that trusts it, and customer tenants that have or have not consented).

The service's code path is the real one. With `environment()` set, this is all it takes:

    identity = ManagedIdentityCredential(client_id=<identity client id>)
    credential = ClientAssertionCredential(
        <customer tenant>, <application client id>,
        lambda: identity.get_token("api://AzureADTokenExchange/.default").token,
    )
    DataLakeServiceClient("https://127.0.0.1:<port>/<account>", credential=credential)

because azure-identity reads `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` (the managed identity) and
`AZURE_AUTHORITY_HOST` (where `ClientAssertionCredential` posts: `<authority>/<tenant>/oauth2/v2.0/token`,
azure/identity/_internal/aad_client_base.py), and `requests` reads `REQUESTS_CA_BUNDLE` (the public CAs
and the local one) for every HTTPS connection of the SDKs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.entra import Directory, LocalEntra, ManagedIdentity
from devstack.local_tls import LocalTls
from devstack.managed_identity import ManagedIdentityEndpoint


@dataclass(frozen=True)
class Ids:
    """The ids of the local directory that the service and the tests need."""

    service_tenant: str
    identity_client_id: str
    identity_principal_id: str
    application_client_id: str


class LocalIdentity:
    """The CA, the local Entra ID (HTTPS) and the managed-identity endpoint (HTTP), with one directory.

    `folder` keeps the CA, the signing key and the directory between runs (the local host); without it
    everything is new and in a temporary folder given as `tls_folder` (tests)."""

    def __init__(self, tls_folder: Path, *, folder: Path | None = None) -> None:
        self.tls = LocalTls.ensure(tls_folder)
        self.folder = folder
        self.directory = Directory.load(folder) if folder is not None else Directory()
        self.ids = self._ensure_service()
        self.entra = LocalEntra(self.directory, self.tls.server_context())
        identity = self.directory.find_identity(client_id=self.ids.identity_client_id)
        self.endpoint = ManagedIdentityEndpoint(self.directory, system_assigned=identity)

    def _ensure_service(self) -> Ids:
        """The service's tenant, managed identity and application: read back, or made once."""
        identities = self.directory.managed_identities()
        state = self.directory.state()
        if identities and state["applications"]:
            identity, app = identities[0], state["applications"][0]
            return Ids(identity.tenant, identity.client_id, identity.principal_id, app["clientId"])
        tenant = str(uuid.uuid4())
        identity = ManagedIdentity(str(uuid.uuid4()), str(uuid.uuid4()), tenant)
        self.directory.add_managed_identity(identity)
        application = str(uuid.uuid4())
        self.directory.add_application(application, tenant, [identity.federated_credential()])
        self._save()
        return Ids(tenant, identity.client_id, identity.principal_id, application)

    def _save(self) -> None:
        if self.folder is not None:
            self.directory.save(self.folder)

    def start(self, *, entra_port: int = 0, identity_port: int = 0) -> LocalIdentity:
        self.entra.start(port=entra_port)
        try:
            self.endpoint.start(port=identity_port)
        except OSError:
            self.entra.stop()
            raise
        return self

    def stop(self) -> None:
        self.endpoint.stop()
        self.entra.stop()

    def __enter__(self) -> LocalIdentity:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def customer_tenant(self, *, consented: bool = True) -> str:
        """A new customer tenant; with consent, the application has a service principal there."""
        tenant = str(uuid.uuid4())
        self.directory.add_tenant(tenant)
        if consented:
            self.directory.grant_consent(tenant, self.ids.application_client_id)
        self._save()
        return tenant

    def principal_in(self, tenant: str) -> str:
        """The application's object id in a consented tenant (what a role assignment names); in the
        service's own tenant, the managed identity's principal id."""
        if tenant == self.ids.service_tenant:
            return self.ids.identity_principal_id
        principal = self.directory.service_principal_id(tenant, self.ids.application_client_id)
        if principal is None:
            raise KeyError("the application has no service principal in that tenant (no consent)")
        return principal

    def environment(self) -> dict[str, str]:
        """What azure-identity and the SDKs read to use these stand-ins (see the module docstring)."""
        return {
            **self.endpoint.environment(),
            "AZURE_AUTHORITY_HOST": self.entra.authority,
            "REQUESTS_CA_BUNDLE": str(self.tls.ca_bundle),
        }

    def app_settings(self) -> dict[str, str]:
        """The service's app settings that name this directory's application, tenant and identity
        (shared.settings: what infra/app/api.bicep sets in Azure)."""
        return {
            "EXPORT_APP_CLIENT_ID": self.ids.application_client_id,
            "EXPORT_APP_TENANT_ID": self.ids.service_tenant,
            "EXPORT_IDENTITY_CLIENT_ID": self.ids.identity_client_id,
        }


LAKE_HTTPS_OFFSET, ENTRA_OFFSET, IDENTITY_OFFSET, KEYLESS_BLOB_OFFSET = 5, 6, 7, 8
KEYLESS_BLOB_ACCOUNT = "keylessblob"


class KeylessStorage:
    """What the local host adds for keyless destinations, beside its Azurite and ADLS Gen2 emulator:

    - the local identity stand-ins (`LocalIdentity`), kept in `<data>/entra` and `<data>/tls`;
    - the trust and tenant of the ADLS Gen2 emulator's account (its HTTPS listener is started by the
      caller with `tls` and `trusted_keys`): the account gets a customer tenant of its own, consented,
      and no role (the customer assigns one, as in Azure: the emulator's control endpoint);
    - a Blob account that takes tokens: Azurite, Blob service only, over HTTPS with `--oauth basic`.
    """

    def __init__(self, data_dir: Path, ports: dict[str, int]) -> None:
        self.data_dir = data_dir
        self.ports = ports
        self.identity = LocalIdentity(data_dir / "tls", folder=data_dir / "entra")
        self.blob: Any = None

    @staticmethod
    def port_names() -> dict[str, int]:
        """The ports it needs, as offsets from the host's storage port."""
        return {
            "lake_https": LAKE_HTTPS_OFFSET,
            "entra": ENTRA_OFFSET,
            "identity": IDENTITY_OFFSET,
            "keyless_blob": KEYLESS_BLOB_OFFSET,
        }

    @property
    def trusted_keys(self) -> Any:
        from devstack.adls_emulator import TrustedKeys

        return TrustedKeys(file=self.data_dir / "entra" / "jwks.json")

    def start(self, blob_key: str) -> KeylessStorage:
        from devstack.azurite import Azurite

        self.identity.start(entra_port=self.ports["entra"], identity_port=self.ports["identity"])
        blob = Azurite(
            location=self.data_dir / "azurite-keyless",
            accounts={KEYLESS_BLOB_ACCOUNT: blob_key},
            blob_port=self.ports["keyless_blob"],
            tls=self.identity.tls,
            oauth=True,
            blob_only=True,
        )
        try:
            blob.start()
        except Exception:
            blob.stop()
            self.identity.stop()
            raise
        self.blob = blob
        return self

    def configure_lake(self, lake: Any, account: str) -> str:
        """Give the lake account a consented customer tenant (once; kept with the emulator's data)."""
        tenant = lake.identity(account)["tenant"]
        if tenant is None or tenant not in self.identity.directory.tenants():
            tenant = self.identity.customer_tenant()
            lake.set_identity(account, tenant=tenant)
        return str(tenant)

    def stop(self) -> None:
        if self.blob is not None:
            self.blob.stop()
            self.blob = None
        self.identity.stop()

    @property
    def blob_url(self) -> str:
        return str(self.blob.url("blob", KEYLESS_BLOB_ACCOUNT)) if self.blob is not None else ""

    def describe(self, lake_tenant: str, lake_https_url: str) -> dict[str, str]:
        """The ids and addresses a keyless export needs (the host's status, `scripts/run storage`)."""
        ids = self.identity.ids
        return {
            "authority": self.identity.entra.authority,
            "serviceTenant": ids.service_tenant,
            "managedIdentityClientId": ids.identity_client_id,
            "applicationClientId": ids.application_client_id,
            "lakeHttps": lake_https_url,
            "lakeTenant": lake_tenant,
            "lakePrincipal": self.identity.principal_in(lake_tenant),
            "keylessBlob": self.blob_url,
            "caFile": str(self.identity.tls.ca_file),
        }
