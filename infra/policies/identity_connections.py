"""CKV_SIGX_4: a Function App reaches the service's own resources with identities only: no connection
strings, keys, SAS or passwords in its app settings or its deployment storage.

What fails, on every Microsoft.Web/sites resource:
- `AzureWebJobsStorage` as a connection string, or no identity-based host storage (`AzureWebJobsStorage__*`);
- a connection set both as a connection string (`X`) and with identity settings (`X__...`);
- with only user-assigned identities on the site: a connection without `X__credential: 'managedidentity'`
  and `X__clientId` (or `X__managedIdentityResourceId`), which would otherwise look for a system identity;
- an app setting whose value carries a secret: a list*() call (listKeys, listConnectionStrings, ...), text
  with AccountKey=, SharedAccessKey=, a signature or a password, or a @secure() parameter (a secret belongs
  in Key Vault, behind a `@Microsoft.KeyVault(...)` reference);
- APPINSIGHTS_INSTRUMENTATIONKEY, or APPLICATIONINSIGHTS_CONNECTION_STRING without
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING `...Authorization=AAD` (ingestion with the key instead);
- Flex deployment storage authenticated with `StorageAccountConnectionString`.

Sources:
- https://learn.microsoft.com/azure/azure-functions/functions-reference#configure-an-identity-based-connection
  (common properties `credential`, `clientId`, `managedIdentityResourceId`) and
  #connecting-to-host-storage-with-an-identity;
- https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#configure-deployment-settings
  (deployment storage authentication: SystemAssignedIdentity, UserAssignedIdentity,
  StorageAccountConnectionString);
- https://learn.microsoft.com/azure/azure-functions/functions-app-settings#applicationinsights_authentication_string
  and https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LIB = str(Path(__file__).resolve().parent / "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

from bicep_tree import (  # noqa: E402
    Deployment,
    Expr,
    ResourcePolicy,
    Template,
    app_settings,
    as_object,
    config,
    key_material,
    resolve,
    site_properties,
)
from checkov.common.models.enums import CheckCategories  # noqa: E402

ID = "CKV_SIGX_4"
NAME = "Function Apps reach the service's own resources with identities only (no connection strings, keys)"
GUIDE = "https://learn.microsoft.com/azure/azure-functions/functions-reference#configure-an-identity-based-connection"

# The suffixes that make `X__suffix` part of an identity-based connection named X.
CONNECTION_PROPERTIES = {
    "fullyqualifiednamespace",
    "serviceuri",
    "blobserviceuri",
    "queueserviceuri",
    "tableserviceuri",
    "accountname",
    "accountendpoint",
    "credential",
    "clientid",
    "managedidentityresourceid",
}
KEY_VAULT_REFERENCE = "@microsoft.keyvault("


def _text(deployment: Deployment, template: Template, expr: Expr) -> str | None:
    value = resolve(deployment, template, expr)
    return value if isinstance(value, str) else None


def _user_assigned(at: str, prefix: str, credential: str | None, suffixes: set[str]) -> list[str]:
    """With only user-assigned identities, a connection names the credential and the identity."""
    problems = []
    if (credential or "").lower() != "managedidentity":
        problems.append(f"{at}: {prefix}__credential must be 'managedidentity' (user-assigned)")
    if not {"clientid", "managedidentityresourceid"} & suffixes:
        problems.append(f"{at}: {prefix}__clientId is missing (user-assigned)")
    return problems


class IdentityConnections(ResourcePolicy):
    def __init__(self) -> None:
        categories = (CheckCategories.IAM, CheckCategories.SECRETS)
        super().__init__(NAME, ID, categories, ("Microsoft.Web/sites",), GUIDE)

    def judge(
        self, deployment: Deployment, template: Template, name: str, resource: Mapping[str, Any]
    ) -> list[str] | None:
        at = template.at(resource, f"resource {name}")
        settings, unseen = app_settings(deployment, template, name, resource)
        if unseen:
            return unseen  # the rules below need every setting
        problems: list[str] = []
        by_name = {setting.lower(): (setting, value, where) for setting, (value, where) in settings.items()}
        connections: dict[str, tuple[str, set[str]]] = {}  # lower-case name: (name as written, suffixes)
        for setting in settings:
            prefix, _, suffix = setting.partition("__")
            if suffix.lower() in CONNECTION_PROPERTIES:
                connections.setdefault(prefix.lower(), (prefix, set()))[1].add(suffix.lower())

        if "azurewebjobsstorage" in by_name:
            problems.append(f"{by_name['azurewebjobsstorage'][2]}: a connection string (account keys)")
        if "azurewebjobsstorage" not in connections:
            problems.append(f"{at}: no identity-based host storage (AzureWebJobsStorage__blobServiceUri...)")
        identity = as_object(deployment, template, config(resource).get("identity", {})) or {}
        identity_type = _text(deployment, template, identity.get("type", "")) or ""
        user_assigned_only = "systemassigned" not in identity_type.lower().replace(" ", "")
        for key, (prefix, suffixes) in connections.items():
            if key in by_name and key != "azurewebjobsstorage":
                problems.append(f"{by_name[key][2]}: a connection string beside identity settings {prefix}__")
            if user_assigned_only:
                credential = by_name.get(f"{key}__credential")
                text = _text(deployment, template, credential[1]) if credential else None
                problems += _user_assigned(at, prefix, text, suffixes)

        for setting, value, where in by_name.values():
            text = _text(deployment, template, value)
            if text is not None and text.lower().startswith(KEY_VAULT_REFERENCE):
                continue  # a reference resolved with the site's identity: the secret stays in Key Vault
            problems += [f"{found} ({setting})" for found in key_material(deployment, template, value, where)]

        problems += self.telemetry(deployment, template, at, by_name)
        problems += self.deployment_storage(deployment, template, at, resource)
        return problems

    @staticmethod
    def telemetry(
        deployment: Deployment, template: Template, at: str, by_name: Mapping[str, tuple[str, Expr, str]]
    ) -> list[str]:
        """Application Insights ingests with Entra ID, never with the instrumentation key."""
        problems = []
        if "appinsights_instrumentationkey" in by_name:
            where = by_name["appinsights_instrumentationkey"][2]
            problems.append(f"{where}: ingestion with the instrumentation key")
        if "applicationinsights_connection_string" in by_name:
            auth = by_name.get("applicationinsights_authentication_string")
            text = _text(deployment, template, auth[1]) if auth else None
            if "authorization=aad" not in (text or "").lower().replace(" ", ""):
                problems.append(
                    f"{at}: APPLICATIONINSIGHTS_CONNECTION_STRING without APPLICATIONINSIGHTS_AUTHENTICATION"
                    "_STRING '...Authorization=AAD' sends telemetry with the instrumentation key"
                )
        return problems

    @staticmethod
    def deployment_storage(
        deployment: Deployment, template: Template, at: str, resource: Mapping[str, Any]
    ) -> list[str]:
        path = ("functionAppConfig", "deployment", "storage", "authentication")
        node: Mapping[str, Any] | None = site_properties(deployment, template, resource)
        for key in path:
            node = as_object(deployment, template, node.get(key, {})) if node is not None else None
        kind = _text(deployment, template, (node or {}).get("type", ""))
        if (kind or "").lower() == "storageaccountconnectionstring":
            return [f"{at}: deployment storage authenticated with StorageAccountConnectionString"]
        return []


check = IdentityConnections()
