"""CKV_SIGX_3: no saved searches while a Log Analytics workspace forces customer-managed storage for queries
(forceCmkForQuery) and has no linked 'Query' storage account.

Sources:
- avm/res/operational-insights/workspace, main.bicep (Azure/bicep-registry-modules, every tag from 0.1.0 to
  0.16.1, 0.7.0 included): `param forceCmkForQuery bool = true`, and linkedStorageAccounts is "Conditional.
  ... Required if 'forceCmkForQuery' is set to 'true' and 'savedSearches' is not empty.";
- https://learn.microsoft.com/azure/azure-monitor/logs/private-storage (customer-managed storage for saved
  queries: the 'Query' linked storage account).

The rule is read per deployment: a workspace that may force customer-managed storage fails when any template
of the deployment declares a saved search (a savedSearches resource, or a workspace module's savedSearches)
and none links a 'Query' storage account. A plain workspace resource forces nothing unless it says so.
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
    Accepts,
    Deployment,
    Expr,
    ModulePolicy,
    ResourcePolicy,
    Template,
    as_object,
    config,
    must_be,
    registry_path,
    resolve,
)
from checkov.common.models.enums import CheckCategories  # noqa: E402

ID = "CKV_SIGX_3"
NAME = "No saved searches while a workspace forces customer-managed query storage with no Query account"
GUIDE = "https://learn.microsoft.com/azure/azure-monitor/logs/private-storage"
WORKSPACE = "Microsoft.OperationalInsights/workspaces"
AVM_WORKSPACE = "avm/res/operational-insights/workspace"
NO_FORCING = Accepts(values=frozenset({False}))


def saved_searches(deployment: Deployment) -> list[str]:
    """Where the deployment declares saved searches."""
    found = [t.at(r, f"resource {n}") for t, n, r in deployment.resources(f"{WORKSPACE}/savedSearches")]
    for template, name, module in deployment.registry_modules(AVM_WORKSPACE):
        listed = resolve(deployment, template, _params(module).get("savedSearches", []))
        if listed != []:
            found.append(template.at(module, f"module {name}, savedSearches"))
    return found


def query_storage_linked(deployment: Deployment) -> bool:
    """Whether some template links a storage account for queries: a linkedStorageAccounts resource named
    'Query', or a workspace module given one."""
    for _, _, resource in deployment.resources(f"{WORKSPACE}/linkedStorageAccounts"):
        if str(config(resource).get("name", "")).split("/")[-1].lower() == "query":
            return True
    for template, _, module in deployment.registry_modules(AVM_WORKSPACE):
        linked = resolve(deployment, template, _params(module).get("linkedStorageAccounts", []))
        for item in linked if isinstance(linked, list) else []:
            entry = as_object(deployment, template, item) or {}
            if str(entry.get("name", "")).lower() == "query":
                return True
    return False


def _params(module: Mapping[str, Any]) -> Mapping[str, Any]:
    params = config(module).get("params", {})
    return params if isinstance(params, Mapping) else {}


def judge_forcing(deployment: Deployment, template: Template, forcing: Expr, where: str) -> list[str]:
    searches = saved_searches(deployment)
    if not searches or query_storage_linked(deployment):
        return []
    problems = must_be(deployment, template, forcing, where, NO_FORCING)
    context = (
        f"saved searches ({'; '.join(searches)}) then need a linked 'Query' storage account, and none is"
    )
    return [f"{problem}: {context}" for problem in problems]


class WorkspaceResource(ResourcePolicy):
    def __init__(self) -> None:
        super().__init__(NAME, ID, (CheckCategories.CONVENTION,), (WORKSPACE,), GUIDE)

    def judge(
        self, deployment: Deployment, template: Template, name: str, resource: Mapping[str, Any]
    ) -> list[str] | None:
        properties = as_object(deployment, template, config(resource).get("properties", {})) or {}
        where = template.at(resource, f"resource {name} forceCmkForQuery")
        return judge_forcing(deployment, template, properties.get("forceCmkForQuery", False), where)


class WorkspaceModule(ModulePolicy):
    def __init__(self) -> None:
        super().__init__(NAME, ID, (CheckCategories.CONVENTION,), GUIDE)

    def judge(
        self, deployment: Deployment, template: Template, name: str, module: Mapping[str, Any]
    ) -> list[str] | None:
        if registry_path(module) != AVM_WORKSPACE:
            return None
        params = _params(module)
        where = template.at(module, f"module {name} forceCmkForQuery")
        if "forceCmkForQuery" not in params:
            where += f" (not set: {AVM_WORKSPACE} defaults it to true)"
        return judge_forcing(deployment, template, params.get("forceCmkForQuery", True), where)


check = WorkspaceResource()
module_check = WorkspaceModule()
