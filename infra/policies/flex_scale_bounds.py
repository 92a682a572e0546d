"""CKV_SIGX_2: a Flex Consumption site's scale settings stay within what Flex accepts, wherever they come
from: maximumInstanceCount 40 to 1000, instanceMemoryMB 512, 2048 or 4096.

Sources:
- https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan, Considerations: "Scale: The
  lowest maximum scale is currently 40. The highest currently supported value is 1000." Instance memory:
  512, 2,048 and 4,096 MB (MicrosoftDocs/azure-docs, articles/azure-functions/flex-consumption-plan.md);
- Microsoft's Flex Consumption sample declares the same bounds: `@minValue(40) @maxValue(1000) param
  maximumInstanceCount` (Azure-Samples/azure-functions-flex-consumption-samples, IaC/bicep/main.bicep).

checkov renders `maximumInstanceCount: maximumInstanceCount` as the parameter's default (100), whatever a
caller passes; this policy follows the value through every parameter and module call instead: each
parameter on the way must declare bounds within Flex's (@minValue/@maxValue, or @allowed), and each
literal must be within them. A value it cannot follow fails.
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
    FlexSitePolicy,
    Template,
    as_object,
    must_be,
    short,
    site_properties,
)
from checkov.common.models.enums import CheckCategories  # noqa: E402

ID = "CKV_SIGX_2"
NAME = "Flex scale settings stay within Flex Consumption's bounds (maximumInstanceCount, instanceMemoryMB)"
GUIDE = "https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#considerations"

BOUNDS = {
    "maximumInstanceCount": Accepts(low=40, high=1000),
    "instanceMemoryMB": Accepts(values=frozenset({512, 2048, 4096})),
}


class FlexScaleBounds(FlexSitePolicy):
    def __init__(self) -> None:
        super().__init__(NAME, ID, (CheckCategories.CONVENTION,), GUIDE)

    def judge_site(
        self, deployment: Deployment, template: Template, name: str, site: Mapping[str, Any]
    ) -> list[str]:
        at = template.at(site, f"resource {name}")
        raw = site_properties(deployment, template, site).get("functionAppConfig", {})
        app_config = as_object(deployment, template, raw)
        if app_config is None:
            return [f"{at}: cannot see functionAppConfig ({short(raw)}); write it as an object"]
        raw = app_config.get("scaleAndConcurrency", {})
        scale = as_object(deployment, template, raw)
        if scale is None:
            return [f"{at}: cannot see functionAppConfig.scaleAndConcurrency ({short(raw)})"]
        problems: list[str] = []
        for setting, accepts in BOUNDS.items():
            if setting in scale:  # absent: Flex's defaults (100 instances, 2048 MB) are within the bounds
                where = f"{at} scaleAndConcurrency.{setting}"
                problems += must_be(deployment, template, scale[setting], where, accepts)
        return problems


check = FlexScaleBounds()
