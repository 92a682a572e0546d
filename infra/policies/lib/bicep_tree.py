"""A deployment's Bicep templates as written, and the base of the project's checkov policies.

checkov hands a check one resource whose values it has already rendered: a parameter becomes its default,
so `maximumInstanceCount: maximumInstanceCount` reads 100 even where every caller passes 8, and module calls
are not handed to checks at all. A check on the rendered copy would pass what Azure refuses. The policies
therefore read the same files again with pycep (the parser checkov uses), unrendered, and follow a value
through variables, parameters and the module calls that pass them, up to the template a deployer runs
(`trace`). What they cannot follow (a function call, a condition, a registry module's insides) fails, with
the reason, instead of passing.

A deployment is the folder of the scanned file together with the folders above it that hold .bicep files
too (infra/app/api.bicep belongs to infra/), so a test can keep several deployments side by side.

This file is not a check: lib/ has no __init__.py, so checkov's loader skips it, and the checks import it.
"""

from __future__ import annotations

import functools
import logging
import re
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.bicep.runner import Runner
from checkov.common.bridgecrew.check_type import CheckType
from checkov.common.checks.base_check import BaseCheck
from checkov.common.checks.base_check_registry import BaseCheckRegistry
from checkov.common.models.enums import CheckCategories, CheckResult
from pycep import BicepParser

LOG = logging.getLogger("signals_export.policies")

Expr = Any  # a value as pycep writes it: a literal, a name, or a dict for an operator or a function


# -- the templates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One parsed .bicep file."""

    path: Path
    parsed: Mapping[str, Any]
    label: str  # the path as messages show it

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.parsed.get(name)
        return value if isinstance(value, Mapping) else {}

    @property
    def params(self) -> Mapping[str, Any]:
        return self.section("parameters")

    @property
    def variables(self) -> Mapping[str, Any]:
        return self.section("variables")

    @property
    def resources(self) -> Mapping[str, Any]:
        return self.section("resources")

    @property
    def modules(self) -> Mapping[str, Any]:
        return self.section("modules")

    def at(self, entry: Mapping[str, Any], what: str) -> str:
        """`infra/app/api.bicep:36 param maximumInstanceCount`, for messages."""
        line = entry.get("__start_line__")
        return f"{self.label}:{line} {what}" if line else f"{self.label}: {what}"


@dataclass(frozen=True)
class Call:
    """A module call from `caller` into another template of the deployment."""

    caller: Template
    name: str
    params: Expr


@dataclass(frozen=True)
class Deployment:
    """Every template of one deployment, and who calls whom."""

    root: Path
    templates: Mapping[Path, Template]
    errors: Mapping[Path, str] = field(default_factory=dict)

    def template(self, path: Path) -> Template:
        return self.templates[path.resolve()]

    def calls_into(self, template: Template) -> list[Call]:
        calls = []
        for caller in self.templates.values():
            for name, module in caller.modules.items():
                if module.get("type") != "local":
                    continue
                target = (caller.path.parent / module.get("detail", {}).get("path", "")).resolve()
                if target == template.path:
                    calls.append(Call(caller, name, config(module).get("params", {})))
        return calls

    def resources(self, *types: str) -> Iterator[tuple[Template, str, Mapping[str, Any]]]:
        """Declared (not `existing`) resources of the given types, in every template."""
        wanted = {t.lower() for t in types}
        for template in self.templates.values():
            for name, resource in template.resources.items():
                if str(resource.get("type", "")).lower() in wanted and not resource.get("existing"):
                    yield template, name, resource

    def registry_modules(self, path: str) -> Iterator[tuple[Template, str, Mapping[str, Any]]]:
        """Calls of a registry module (br/..., ts/...) whose path is `path`, at any version."""
        for template in self.templates.values():
            for name, module in template.modules.items():
                if registry_path(module) == path:
                    yield template, name, module


def config(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The body of a resource or module declaration."""
    body = entry.get("config")
    return body if isinstance(body, Mapping) else {}


def registry_path(module: Mapping[str, Any]) -> str | None:
    """A registry module's path (avm/res/web/site), None for a local module."""
    if module.get("type") == "local":
        return None
    return str(module.get("detail", {}).get("path", "")).strip("/")


def _root_of(path: Path) -> Path:
    root = path.parent
    while any(root.parent.glob("*.bicep")) and root.parent != root:
        root = root.parent
    return root


def _label(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@functools.cache
def _parser() -> BicepParser:
    return BicepParser(add_line_numbers=True)  # building the grammar takes a second or so: once


@functools.cache
def _deployment_at(root: Path) -> Deployment:
    parser = _parser()
    templates, errors = {}, {}
    for path in sorted(root.rglob("*.bicep")):
        resolved = path.resolve()
        try:
            parsed = parser.parse(text=path.read_text(encoding="utf-8"))
        except Exception as error:  # lark's errors name the line; the template cannot be judged
            errors[resolved] = f"{_label(resolved)} does not parse: {str(error).splitlines()[0]}"
            continue
        templates[resolved] = Template(resolved, parsed, _label(resolved))
    return Deployment(root, templates, errors)


def deployment_of(scanned_file: str) -> Deployment:
    path = Path(scanned_file).resolve()
    return _deployment_at(_root_of(path))


# -- following a value -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A parameter the value passes through: its declaration bounds every value it can carry."""

    template: Template
    name: str
    decl: Mapping[str, Any]

    @property
    def where(self) -> str:
        return self.template.at(self.decl, f"param {self.name}")

    def decorator(self, kind: str) -> Any:
        return next(
            (d.get("argument") for d in self.decl.get("decorators", []) if d.get("type") == kind), None
        )


@dataclass(frozen=True)
class Leaf:
    """Where a value ends: a literal, or an expression that is not a name (a call, a condition, ...)."""

    template: Template
    expr: Expr
    where: str


def trace(deployment: Deployment, template: Template, expr: Expr, where: str) -> Iterator[Param | Leaf]:
    """Every parameter a value passes through and every expression it can come from: a parameter leads to
    its default and to what each module call passes for it; a variable to its value."""
    seen: set[tuple[Path, str]] = set()

    def follow(template: Template, expr: Expr, where: str) -> Iterator[Param | Leaf]:
        if isinstance(expr, str) and (expr in template.params or expr in template.variables):
            if (template.path, expr) in seen:
                return  # already followed, through another module call
            seen.add((template.path, expr))
            if expr in template.params:
                param = Param(template, expr, template.params[expr])
                yield param
                if param.decl.get("default") is not None:
                    yield from follow(template, param.decl["default"], f"{param.where} (default)")
                for call in deployment.calls_into(template):
                    call_at = call.caller.at(call.caller.modules[call.name], f"module {call.name}")
                    if not isinstance(call.params, Mapping):
                        yield Leaf(call.caller, call.params, call_at)
                    elif expr in call.params:
                        yield from follow(call.caller, call.params[expr], f"{call_at}, {expr}")
                return
            variable = template.variables[expr]
            yield from follow(template, variable.get("value"), template.at(variable, f"var {expr}"))
            return
        yield Leaf(template, expr, where)

    yield from follow(template, expr, where)


def resolve(deployment: Deployment, template: Template, expr: Expr) -> Expr:
    """The expression a name stands for, through variables only (a parameter's value is not known)."""
    first = next(trace(deployment, template, expr, ""), None)
    return first.expr if isinstance(first, Leaf) and first.template == template else expr


@dataclass(frozen=True)
class Accepts:
    """The values a setting may take: integers between two bounds, or one of a few values."""

    low: int | None = None
    high: int | None = None
    values: frozenset[object] | None = None

    def accepts(self, value: object) -> bool:
        if self.values is not None:
            return value in self.values and type(value) in {type(v) for v in self.values}
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
        )

    def covers(self, param: Param) -> bool:
        """Whether every value the parameter's declaration admits is accepted."""
        allowed = param.decorator("allowed")
        if isinstance(allowed, list):
            return all(self.accepts(v) for v in allowed)
        if param.decl.get("type") == "bool":
            return self.accepts(True) and self.accepts(False)
        low, high = param.decorator("min_value"), param.decorator("max_value")
        return (
            self.values is None
            and param.decl.get("type") == "int"
            and isinstance(low, int)
            and isinstance(high, int)
            and self.accepts(low)
            and self.accepts(high)
        )

    def __str__(self) -> str:
        if self.values is not None:
            ordered = sorted(self.values, key=lambda v: (str(type(v)), str(v).zfill(12)))
            return " or ".join(_show(v) for v in ordered)
        return f"{self.low} to {self.high}"


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _admits(param: Param) -> str:
    allowed = param.decorator("allowed")
    if isinstance(allowed, list):
        return "@allowed " + ", ".join(_show(v) for v in allowed)
    low, high = param.decorator("min_value"), param.decorator("max_value")
    if low is None and high is None:
        return f"any {param.decl.get('type')}"
    return f"{'any' if low is None else low} to {'any' if high is None else high}"


def short(expr: Expr) -> str:
    text = str(expr)
    return text if len(text) <= 80 else text[:77] + "..."


def must_be(
    deployment: Deployment, template: Template, expr: Expr, where: str, accepts: Accepts
) -> list[str]:
    """Why the value at `where` may fall outside `accepts`: literals outside it, parameters that admit more,
    and expressions the trace cannot see through. Empty when it cannot."""
    problems = []
    for step in trace(deployment, template, expr, where):
        if isinstance(step, Param):
            if not accepts.covers(step):
                problems.append(f"{step.where} admits {_admits(step)}; it must admit only {accepts}")
        elif isinstance(step.expr, bool | int):
            if not accepts.accepts(step.expr):
                problems.append(f"{step.where}: {_show(step.expr)} is not {accepts}")
        else:
            problems.append(
                f"{step.where}: cannot see the value of {short(step.expr)}; write a literal, or a parameter "
                f"whose @minValue/@maxValue or @allowed keep it to {accepts}"
            )
    return problems


# -- the checks ---------------------------------------------------------------------------------------


def report(check_id: str, problems: list[str] | None) -> CheckResult:
    """A verdict: None is not applicable; each problem is logged, since checkov's Bicep report has no field
    for a check's reasons."""
    if problems is None:
        return CheckResult.UNKNOWN
    for problem in problems:
        LOG.warning("%s %s", check_id, problem)
    return CheckResult.FAILED if problems else CheckResult.PASSED


class ResourcePolicy(BaseResourceCheck):
    """A policy on one declared resource, judged on the templates as written."""

    def __init__(
        self, name: str, id: str, categories: Iterable[CheckCategories], types: Iterable[str], guideline: str
    ):
        super().__init__(
            name=name, id=id, categories=categories, supported_resources=types, guideline=guideline
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:  # conf: checkov's rendered copy
        return _scan(self, "resources")

    @abstractmethod
    def judge(
        self, deployment: Deployment, template: Template, name: str, resource: Mapping[str, Any]
    ) -> list[str] | None:
        """The problems of this resource; None when the policy does not apply to it."""


class _ModuleRegistry(BaseCheckRegistry):
    """Checks on module calls. checkov's Bicep runner hands checks resources and parameters only; this
    registry, added to the runner below, hands it the module calls of each template as well."""

    def extract_entity_details(self, entity: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        name, module = next(iter(entity.items()))
        return module["type"], name, module


MODULE_REGISTRY = _ModuleRegistry(report_type=CheckType.BICEP)
# checkov 3.3.30 walks Runner.block_type_registries for each template's sections (bicep/runner.py,
# add_python_check_results); tests/infra proves the module checks run.
Runner.block_type_registries.setdefault("modules", MODULE_REGISTRY)  # type: ignore[arg-type]

MODULE_TYPES = ("local", "bicep_registry", "bicep_registry_alias", "template_spec", "template_spec_alias")


class ModulePolicy(BaseCheck):
    """A policy on one module call, judged on the templates as written."""

    def __init__(self, name: str, id: str, categories: Iterable[CheckCategories], guideline: str):
        super().__init__(
            name=name,
            id=id,
            categories=categories,
            supported_entities=MODULE_TYPES,
            block_type="module",
            guideline=guideline,
        )
        MODULE_REGISTRY.register(self)

    def scan_entity_conf(self, conf: dict[str, Any], entity_type: str) -> CheckResult:
        return _scan(self, "modules")

    @abstractmethod
    def judge(
        self, deployment: Deployment, template: Template, name: str, module: Mapping[str, Any]
    ) -> list[str] | None:
        """The problems of this module call; None when the policy does not apply to it."""


def _scan(check: ResourcePolicy | ModulePolicy, section: str) -> CheckResult:
    """Judge the declaration checkov is scanning (`entity_path` is `<file>:<type>:<name>`) as written."""
    scanned_file, _, name = check.entity_path.rsplit(":", 2)
    deployment = deployment_of(scanned_file)
    if deployment.errors:
        return report(check.id, list(deployment.errors.values()))
    template = deployment.template(Path(scanned_file))
    return report(check.id, check.judge(deployment, template, name, template.section(section)[name]))


# -- Function Apps ------------------------------------------------------------------------------------


def as_object(deployment: Deployment, template: Template, expr: Expr) -> Mapping[str, Any] | None:
    """An object literal, through variables; None when the value is anything else."""
    value = resolve(deployment, template, expr)
    return value if isinstance(value, Mapping) and not _is_operation(value) else None


def _is_operation(value: Mapping[str, Any]) -> bool:
    return set(value) <= {"operator", "function"} and bool(value)


def site_properties(deployment: Deployment, template: Template, site: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_object(deployment, template, config(site).get("properties", {})) or {}


def is_flex(deployment: Deployment, template: Template, site: Mapping[str, Any]) -> bool:
    """A site on the Flex Consumption plan: it has functionAppConfig (Flex refuses a site without it and
    no other plan reads it), or its serverFarmId is a plan of this template with the FC1 SKU."""
    properties = site_properties(deployment, template, site)
    if "functionAppConfig" in properties:
        return True
    farm = properties.get("serverFarmId")
    plan_name = (
        farm.get("operator", {}).get("operands", {}).get("operand_1") if isinstance(farm, Mapping) else None
    )
    plan = template.resources.get(plan_name) if isinstance(plan_name, str) else None
    sku = as_object(deployment, template, config(plan).get("sku", {})) if plan else None
    return sku is not None and (sku.get("name") == "FC1" or sku.get("tier") == "FlexConsumption")


class FlexSitePolicy(ResourcePolicy):
    """A policy on the sites of the Flex Consumption plan; other sites are not its business."""

    def __init__(self, name: str, id: str, categories: Iterable[CheckCategories], guideline: str):
        super().__init__(name, id, categories, ("Microsoft.Web/sites",), guideline)

    def judge(
        self, deployment: Deployment, template: Template, name: str, resource: Mapping[str, Any]
    ) -> list[str] | None:
        if not is_flex(deployment, template, resource):
            return None
        return self.judge_site(deployment, template, name, resource)

    @abstractmethod
    def judge_site(
        self, deployment: Deployment, template: Template, name: str, site: Mapping[str, Any]
    ) -> list[str]:
        """The problems of the Flex site declared as `name` in `template`."""


def child_configs(template: Template, site_name: str, kind: str) -> Iterator[Mapping[str, Any]]:
    """`Microsoft.Web/sites/config` resources named `kind` ('appsettings', 'web') under the site."""
    for resource in template.resources.values():
        body = config(resource)
        if (
            str(resource.get("type", "")).lower() == "microsoft.web/sites/config"
            and body.get("parent") == site_name
            and body.get("name") == kind
        ):
            yield resource


def unquote(key: str) -> str:
    return key[1:-1] if len(key) > 1 and key[0] == key[-1] == "'" else key


def app_settings(
    deployment: Deployment, template: Template, name: str, site: Mapping[str, Any]
) -> tuple[dict[str, tuple[Expr, str]], list[str]]:
    """The site's app settings, name to (value, where), from siteConfig.appSettings and from
    `config/appsettings` child resources; and what hides some of them from view."""
    settings: dict[str, tuple[Expr, str]] = {}
    unseen: list[str] = []
    site_at = template.at(site, f"resource {name}")
    site_config = as_object(
        deployment, template, site_properties(deployment, template, site).get("siteConfig", {})
    )
    listed = resolve(deployment, template, (site_config or {}).get("appSettings", []))
    if not isinstance(listed, list):
        unseen.append(f"{site_at}: cannot see the app settings ({short(listed)}); list them literally")
        listed = []
    for item in listed:
        entry = as_object(deployment, template, item) or {}
        setting = entry.get("name")
        if not isinstance(setting, str) or "${" in setting:
            unseen.append(f"{site_at}: cannot see the name of an app setting ({short(item)})")
            continue
        settings[setting] = (entry.get("value"), f"{site_at}, app setting {setting}")
    for child in child_configs(template, name, "appsettings"):
        values = as_object(deployment, template, config(child).get("properties"))
        child_at = template.at(child, "config/appsettings")
        if values is None:
            unseen.append(f"{child_at}: cannot see the app settings; list them literally")
            continue
        for key, value in values.items():
            settings[unquote(key)] = (value, f"{child_at}, app setting {unquote(key)}")
    return settings, unseen


KEY_TEXT = re.compile(
    r"(?i)(AccountKey|SharedAccessKey|SharedAccessSignature|Password|pwd)\s*=|[?&;]sig=|\blist[A-Za-z]*\("
)
INTERPOLATED_NAME = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def key_material(deployment: Deployment, template: Template, expr: Expr, where: str) -> list[str]:
    """Where a value carries a secret: a list*() call (listKeys, listConnectionStrings, ...), text that
    holds a key, a signature or a password, or a @secure() parameter; followed through parameters and
    variables, and through names interpolated into strings."""
    found: list[str] = []
    for step in trace(deployment, template, expr, where):
        if isinstance(step, Param):
            if any(d.get("type") == "secure" for d in step.decl.get("decorators", [])):
                found.append(f"{step.where} is @secure()")
        else:
            for text, call in _walk(step.expr):
                if call is not None and call.lower().startswith("list"):
                    found.append(f"{step.where}: calls {call}()")
                elif text is not None and KEY_TEXT.search(text):
                    found.append(f"{step.where}: {short(text)} holds a key or calls list*()")
                elif text is not None:
                    for name in INTERPOLATED_NAME.findall(text):
                        found += key_material(deployment, step.template, name, step.where)
    return found


def _walk(expr: Expr) -> Iterator[tuple[str | None, str | None]]:
    """(text, None) for every string and (None, function name) for every list-style call in `expr`."""
    if isinstance(expr, str):
        yield expr, None
    elif isinstance(expr, Mapping):
        name = expr.get("func_name")
        if isinstance(name, str):
            yield None, name
        for value in expr.values():
            yield from _walk(value)
    elif isinstance(expr, list):
        for value in expr:
            yield from _walk(value)
