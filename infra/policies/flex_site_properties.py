"""CKV_SIGX_1: a Flex Consumption site sets no site property or app setting that Flex refuses or ignores.

Sources:
- the table "Flex Consumption plan deprecations" of the Functions app settings reference,
  https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
  (MicrosoftDocs/azure-docs, articles/azure-functions/functions-app-settings.md);
- Azure's answer to such a property, BadRequest with extended code 51021, "The following list of 4 site
  configuration properties (Site.SiteConfig.FtpsState, Site.SiteConfig.Use32BitWorkerProcess,
  Site.SiteConfig.NetFrameworkVersion, Site.SiteConfig.FunctionsRuntimeScaleMonitoringEnabled) for Flex
  Consumption sites is invalid" (microsoft/azure-pipelines-tasks#21032), the same for
  Site.SiteConfig.FunctionAppScaleLimit (#22254) and Site.SiteConfig.LinuxFxVersion
  (Azure/terraform-azurerm-avm-res-web-site#283);
- the Considerations of https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan
  (WEBSITE_TIME_ZONE, TZ and WEBSITE_LOAD_CERTIFICATES are not supported).

A site declared through the registry module avm/res/web/site cannot be seen into, and fails: that module
sends siteConfig alwaysOn: true and ftpsState: 'FtpsOnly' unless told otherwise (its main.bicep, 0.15.1).
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
    FlexSitePolicy,
    ModulePolicy,
    Template,
    app_settings,
    as_object,
    child_configs,
    config,
    registry_path,
    site_properties,
)
from checkov.common.models.enums import CheckCategories  # noqa: E402

ID = "CKV_SIGX_1"
NAME = "Flex sites set no site property or app setting that Flex Consumption refuses or ignores"
GUIDE = "https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations"

# Site properties (under properties or properties.siteConfig; compared without case), and why.
REFUSED_PROPERTIES = {
    "alwaysOn": "not valid on Flex",
    "containerSize": "renamed scaleAndConcurrency.instanceMemoryMB",
    "ftpsState": "FTPS is not supported (BadRequest 51021)",
    "functionAppScaleLimit": "renamed scaleAndConcurrency.maximumInstanceCount (BadRequest 51021)",
    "functionsRuntimeScaleMonitoringEnabled": "refused with BadRequest 51021",
    "isReserved": "not valid on Flex",
    "reserved": "not valid on a Flex site (the plan is reserved)",
    "isXenon": "not valid on Flex",
    "javaVersion": "replaced by functionAppConfig.runtime.version",
    "linuxFxVersion": "replaced by functionAppConfig.runtime (BadRequest 51021)",
    "netFrameworkVersion": "replaced by functionAppConfig.runtime.version (BadRequest 51021)",
    "powerShellVersion": "replaced by functionAppConfig.runtime.version",
    "preWarmedInstanceCount": "renamed scaleAndConcurrency.alwaysReady",
    "use32BitWorkerProcess": "32-bit is not supported (BadRequest 51021)",
    "vnetBackupRestoreEnabled": "not used for networking on Flex",
    "vnetContentShareEnabled": "not used for networking on Flex",
    "vnetImagePullEnabled": "not used for networking on Flex",
    "vnetRouteAllEnabled": "not used for networking on Flex",
    "windowsFxVersion": "not valid on Flex",
}
REFUSED_SETTINGS = {
    "ENABLE_ORYX_BUILD": "replaced by the remoteBuild deployment parameter",
    "FUNCTIONS_EXTENSION_VERSION": "set by the platform",
    "FUNCTIONS_WORKER_RUNTIME": "replaced by functionAppConfig.runtime.name",
    "FUNCTIONS_WORKER_RUNTIME_VERSION": "replaced by functionAppConfig.runtime.version",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY": "replaced by scaleAndConcurrency.triggers",
    "FUNCTIONS_WORKER_PROCESS_COUNT": "not valid on Flex",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED": "not valid on Flex",
    "SCM_DO_BUILD_DURING_DEPLOYMENT": "replaced by the remoteBuild deployment parameter",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING": "replaced by functionAppConfig.deployment",
    "WEBSITE_CONTENTOVERVNET": "not used for networking on Flex",
    "WEBSITE_CONTENTSHARE": "replaced by functionAppConfig.deployment",
    "WEBSITE_DNS_SERVER": "DNS comes from the integrated virtual network",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT": "replaced by scaleAndConcurrency.maximumInstanceCount",
    "WEBSITE_NODE_DEFAULT_VERSION": "replaced by functionAppConfig.runtime.version",
    "WEBSITE_RUN_FROM_PACKAGE": "deployments go through functionAppConfig.deployment",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION": "there is no content share on Flex",
    "WEBSITE_VNET_ROUTE_ALL": "not used for networking on Flex",
    "WEBSITE_TIME_ZONE": "not supported on Flex",
    "TZ": "not supported on Flex",
    "WEBSITE_LOAD_CERTIFICATES": "certificates are not supported on Flex",
}
_PROPERTIES = {key.lower(): (key, why) for key, why in REFUSED_PROPERTIES.items()}
_SETTINGS = {key.lower(): (key, why) for key, why in REFUSED_SETTINGS.items()}


def refused_keys(values: Mapping[str, Any] | None, at: str) -> list[str]:
    return [
        f"{at}.{key}: {_PROPERTIES[key.lower()][1]}" for key in (values or {}) if key.lower() in _PROPERTIES
    ]


class FlexSiteProperties(FlexSitePolicy):
    def __init__(self) -> None:
        super().__init__(NAME, ID, (CheckCategories.CONVENTION,), GUIDE)

    def judge_site(
        self, deployment: Deployment, template: Template, name: str, site: Mapping[str, Any]
    ) -> list[str]:
        at = template.at(site, f"resource {name}")
        properties = site_properties(deployment, template, site)
        site_config = as_object(deployment, template, properties.get("siteConfig", {}))
        problems = refused_keys(properties, f"{at} properties")
        problems += refused_keys(site_config, f"{at} properties.siteConfig")
        for child in child_configs(template, name, "web"):
            web = as_object(deployment, template, config(child).get("properties"))
            problems += refused_keys(web, template.at(child, "config/web properties"))
        settings, unseen = app_settings(deployment, template, name, site)
        problems += unseen
        for setting, (_, where) in settings.items():
            if setting.lower() in _SETTINGS:
                problems.append(f"{where}: {_SETTINGS[setting.lower()][1]}")
        return problems


class FlexSiteModule(ModulePolicy):
    def __init__(self) -> None:
        super().__init__(NAME, ID, (CheckCategories.CONVENTION,), GUIDE)

    def judge(
        self, deployment: Deployment, template: Template, name: str, module: Mapping[str, Any]
    ) -> list[str] | None:
        if registry_path(module) != "avm/res/web/site":
            return None
        return [
            f"{template.at(module, f'module {name}')}: a site declared through {module['detail'].get('full')}"
            " cannot be seen into (avm/res/web/site sends siteConfig alwaysOn and ftpsState, which Flex"
            " refuses, unless siteConfig is given); declare the site as a Microsoft.Web/sites resource"
        ]


check = FlexSiteProperties()
module_check = FlexSiteModule()
