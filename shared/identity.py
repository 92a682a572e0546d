"""The service's Microsoft Entra ID credentials for customers' storage: one per tenant, built once per
process and reused by every client of that tenant (azure-identity caches each token and gets a new one
before it expires).

- In the service's own tenant: its managed identity (`ManagedIdentityCredential`).
- In a customer's tenant: the multi-tenant application, whose client assertion is the managed
  identity's token for `api://AzureADTokenExchange` (`ClientAssertionCredential`): no secret anywhere
  (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).

azure-identity finds the managed identity through the platform's environment (`IDENTITY_ENDPOINT`,
`IDENTITY_HEADER` on App Service and Functions) and Entra through `AZURE_AUTHORITY_HOST`, which the
service also reads as a setting (its consent links), so one value points both at a sovereign cloud or at
the local stand-ins (devstack/keyless.py). Imported on first use: an export with keys never pays for it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from shared.onboarding import ServiceIdentity

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.identity import ManagedIdentityCredential

TOKEN_EXCHANGE = "api://AzureADTokenExchange/.default"  # noqa: S105 (an audience a federated credential accepts)


class EntraCredentials:
    """Credentials per tenant; thread-safe."""

    def __init__(self, identity: ServiceIdentity) -> None:
        self._identity = identity
        self._lock = threading.Lock()
        self._managed: ManagedIdentityCredential | None = None
        self._by_tenant: dict[str, TokenCredential] = {}

    def for_tenant(self, tenant: str) -> TokenCredential:
        """The credential that signs in to `tenant` (EntraNotConfigured when the settings do not say how)."""
        principal = self._identity.principal(tenant)
        with self._lock:
            credential = self._by_tenant.get(tenant)
            if credential is None:
                managed = self._managed_identity()
                if principal.kind == "managedIdentity":
                    credential = managed
                else:
                    from azure.identity import ClientAssertionCredential

                    credential = ClientAssertionCredential(
                        tenant,
                        principal.client_id,
                        lambda: managed.get_token(TOKEN_EXCHANGE).token,
                        authority=self._identity.authority,
                    )
                self._by_tenant[tenant] = credential
            return credential

    def _managed_identity(self) -> ManagedIdentityCredential:
        if self._managed is None:
            from azure.identity import ManagedIdentityCredential

            self._managed = ManagedIdentityCredential(client_id=self._identity.identity_client_id or None)
        return self._managed
