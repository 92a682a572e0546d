"""Keyless destinations from the customer's side: who the service is in Microsoft Entra ID, what a
customer's tenant must grant it, and how to say so. Pure.

Across tenants the service signs in as a multi-tenant application whose credential is a federated
identity credential trusting the service's managed identity; a customer's administrator consents to the
application in their tenant (it then has a service principal there) and assigns it *Storage Blob Data
Contributor* on the filesystem or container. In the service's own tenant the managed identity itself
holds the role. (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity,
https://learn.microsoft.com/entra/identity-platform/v2-admin-consent)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

from shared.health.rules import Access
from shared.model import AdlsDestination, AuthMethod, Destination, EntraId, SasToken
from shared.sas import RECOMMENDED

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
ROLE = "Storage Blob Data Contributor"
ROLE_ID = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"  # the built-in role's definition id, the same everywhere
STORAGE_SCOPE = "https://storage.azure.com/.default"
APPLICATION_NAME = "signals-export"
# The filesystem's or container's metadata that names the projects allowed to export into it. One
# application (or identity) holds roles in many customers' storage, so a role alone does not say whose
# storage it is: a project could name another customer's container (or the service's own storage) and
# have the service write there, a confused deputy. Only someone who may change the container can claim it
# for a project; the service reads the claim and never sets it. Metadata names are C# identifiers and
# case-insensitive (https://learn.microsoft.com/rest/api/storageservices/set-container-metadata).
CLAIM = "signalsexportprojects"


def claimed_projects(metadata: Mapping[str, str] | None) -> frozenset[str]:
    """The projects a filesystem's or container's metadata claims it for: CLAIM's value (any case of the
    name), comma-separated, blanks ignored."""
    named = next((value for key, value in (metadata or {}).items() if key.lower() == CLAIM), "")
    return frozenset(part.strip() for part in named.split(",") if part.strip())


def claim_command(destination: Destination, project_id: str) -> str:
    """The az command that claims the filesystem or container for a project. Set Container Metadata
    replaces all of the container's metadata: other projects it is claimed for are listed in the same
    value, comma-separated, and other names given again."""
    return (
        f"az storage container metadata update --name {destination.scope} --account-name "
        f"{destination.account} --auth-mode login --metadata {CLAIM}={project_id}"
    )


class EntraNotConfigured(LookupError):
    """The service is not set up for Microsoft Entra ID in that tenant (the message names the setting)."""


@dataclass(frozen=True)
class Principal:
    """Who signs in to a customer's tenant, and so who needs the role there."""

    client_id: str
    kind: Literal["application", "managedIdentity"]

    @property
    def described(self) -> str:
        if self.kind == "managedIdentity":
            return f"the service's managed identity (client id {self.client_id})"
        return f"the application {APPLICATION_NAME} (client id {self.client_id})"


@dataclass(frozen=True)
class ServiceIdentity:
    """Who the service is in Microsoft Entra ID (app settings EXPORT_APP_CLIENT_ID, EXPORT_APP_TENANT_ID,
    EXPORT_IDENTITY_CLIENT_ID, AZURE_AUTHORITY_HOST)."""

    application_client_id: str = ""  # the multi-tenant application customers consent to
    tenant_id: str = ""  # the service's own tenant: the application's and the managed identity's
    identity_client_id: str = ""  # the managed identity (user-assigned); empty: the system-assigned one
    authority: str = PUBLIC_AUTHORITY

    def principal(self, tenant: str) -> Principal:
        """Who signs in to `tenant`: the managed identity in the service's own tenant, the application
        elsewhere. Raises EntraNotConfigured when the settings do not say."""
        if tenant == self.tenant_id and self.tenant_id:
            if not self.identity_client_id:
                raise EntraNotConfigured(
                    "This service has no managed identity for Microsoft Entra ID destinations "
                    "(EXPORT_IDENTITY_CLIENT_ID)."
                )
            return Principal(self.identity_client_id, "managedIdentity")
        if not (self.application_client_id and self.tenant_id):
            raise EntraNotConfigured(
                "This service is not set up for Microsoft Entra ID destinations in other tenants "
                "(EXPORT_APP_CLIENT_ID and EXPORT_APP_TENANT_ID)."
            )
        return Principal(self.application_client_id, "application")

    def consent_url(self, tenant: str) -> str:
        """The admin consent link of the application in `tenant` (none in the service's own tenant)."""
        if tenant == self.tenant_id or not self.application_client_id:
            return ""
        query = urlencode({"client_id": self.application_client_id})
        return f"{self.authority.rstrip('/')}/{tenant}/adminconsent?{query}"

    def access(self, destination: Destination) -> Access:
        """How a destination authenticates, in the words its hints need."""
        credential = destination.credential
        where = f"`{destination.scope}` of the storage account `{destination.account}`"
        scope = f"the {_scope_kind(destination)} {where}"
        if isinstance(credential, SasToken):
            return Access(
                AuthMethod.SAS,
                scope,
                expires=iso(credential.expires_at),
                permissions=RECOMMENDED[destination.kind],
            )
        if isinstance(credential, EntraId):
            tenant = credential.tenant_id
            try:
                principal = self.principal(tenant)
            except EntraNotConfigured:
                return Access(AuthMethod.ENTRA, scope, tenant=tenant, principal="the service", role=ROLE)
            return Access(
                AuthMethod.ENTRA,
                scope,
                tenant=tenant,
                principal=principal.described,
                role=ROLE,
                role_command=role_assignment(destination, principal).command,
                consent_url=self.consent_url(tenant),
            )
        return Access(AuthMethod.SHARED_KEY, scope)


@dataclass(frozen=True)
class RoleAssignment:
    """The role assignment a customer makes, as an `az` command and as Bicep."""

    role: str
    role_id: str
    scope: str  # the ARM scope, with the customer's subscription and resource group to fill in
    command: str
    bicep: str


def role_assignment(destination: Destination, principal: Principal) -> RoleAssignment:
    """Storage Blob Data Contributor for the principal on the destination's filesystem or container: the
    least the export needs (it creates, appends to, reads, renames and deletes files there)."""
    account, container = destination.account, destination.scope
    scope = (
        "/subscriptions/<subscription id>/resourceGroups/<resource group>/providers/Microsoft.Storage/"
        f"storageAccounts/{account}/blobServices/default/containers/{container}"
    )
    command = (
        f'az role assignment create --assignee "{principal.client_id}" --role "{ROLE}" '
        f'--scope "$(az storage account show --name {account} --query id --output tsv)'
        f'/blobServices/default/containers/{container}"'
    )
    return RoleAssignment(ROLE, ROLE_ID, scope, command, _bicep(account, container, principal))


def _bicep(account: str, container: str, principal: Principal) -> str:
    return f"""// Deploy to the storage account's resource group:
//   az deployment group create --resource-group <resource group> --template-file export-role.bicep \\
//     --parameters principalId=$(az ad sp show --id {principal.client_id} --query id --output tsv)
@description('Object id of {principal.described} in this tenant.')
param principalId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {{
  name: '{account}'
}}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {{
  parent: account
  name: 'default'
}}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {{
  parent: blobService
  name: '{container}'
}}

resource exportRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {{
  scope: container
  name: guid(container.id, principalId, '{ROLE_ID}')
  properties: {{
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{ROLE_ID}')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }}
}}
"""


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _scope_kind(destination: Destination) -> str:
    return "filesystem" if isinstance(destination, AdlsDestination) else "container"
