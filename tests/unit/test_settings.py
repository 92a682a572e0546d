"""Every app setting the code reads is set by the infrastructure or documented as optional; settings
fail clearly, naming themselves, when malformed, and take their documented defaults when missing."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest

from shared.health.rules import HealthPolicy
from shared.settings import AppSettings, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
BICEP = ROOT / "infra" / "app" / "api.bicep"
README = ROOT / "README.md"
SETTING = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ENV_NAMES = {"env", "environ", "environment"}  # how the code names a mapping of app settings

# A connection named in a binding (connection="...") is a prefix: identity-based connections are set
# as NAME__fullyQualifiedNamespace, NAME__blobServiceUri, NAME__credential, ...
CONNECTION_PREFIXES = {"AzureWebJobsStorage", "EventHubConnection"}


# -- what the code reads -------------------------------------------------------------------------


def _is_environment(node: ast.expr) -> bool:
    """`env`, `environ` or `os.environ`: a mapping of app settings."""
    if isinstance(node, ast.Name):
        return node.id in ENV_NAMES
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def module_constants(source: str) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments, so that `env.get(CONNECTION_STRING)` is read too."""
    constants = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    constants[target.id] = node.value.value
    return constants


def settings_read_by(source: str, constants: dict[str, str] | None = None) -> set[str]:
    """App setting names a module reads: `env.get("X")`, `os.environ["X"]`, `os.getenv("X")`,
    `"X" in env`, and helpers given the settings and a name (`_number(env, "X", ...)`); a name may
    be a module-level constant."""
    constants = {**(constants or {}), **module_constants(source)}

    def _literal(node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Name):
            value = constants.get(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
        else:
            return None
        return value if value is not None and SETTING.match(value) else None

    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            first = node.args[0] if node.args else None
            if isinstance(func, ast.Attribute) and func.attr in {"get", "pop", "setdefault"}:
                if _is_environment(func.value) and (name := _literal(first)):
                    found.add(name)
            elif (
                (isinstance(func, ast.Attribute) and func.attr == "getenv")
                or (isinstance(func, ast.Name) and func.id == "getenv")
            ) and (name := _literal(first)):
                found.add(name)
            if any(_is_environment(arg) for arg in node.args):
                found |= {name for arg in node.args if (name := _literal(arg))}
        elif isinstance(node, ast.Subscript) and _is_environment(node.value):
            if name := _literal(node.slice):
                found.add(name)
        elif (
            isinstance(node, ast.Compare)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any(_is_environment(c) for c in node.comparators)
            and (name := _literal(node.left))
        ):
            found.add(name)
    return found


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and SETTING.match(node.value):
        return node.value
    return None


def settings_bound_by(source: str) -> set[str]:
    """App settings that function_app.py's binding decorators name: `%NAME%` expressions and
    `connection="NAME"`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            for inner in ast.walk(decorator):
                if (
                    isinstance(inner, ast.keyword)
                    and inner.arg == "connection"
                    and (name := _literal(inner.value))
                ):
                    found.add(name)
                if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                    found |= set(re.findall(r"%([A-Za-z][A-Za-z0-9_]*)%", inner.value))
    return found


def code_files() -> list[Path]:
    return [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py"))]


def settings_the_code_reads() -> dict[str, list[str]]:
    """Each setting the code reads, with where: the one model (shared/settings.py's AppSettings),
    and the settings function_app.py's bindings name."""
    read: dict[str, list[str]] = {}
    for field in AppSettings.model_fields.values():
        assert field.alias, "every app setting is named by its alias"
        read.setdefault(field.alias, []).append("shared/settings.py")
    for name in settings_bound_by((ROOT / "function_app.py").read_text()):
        read.setdefault(name, []).append("function_app.py")
    return read


def settings_read_outside_the_model() -> dict[str, list[str]]:
    """Settings some code reads from the environment itself, beside the model."""
    read: dict[str, list[str]] = {}
    sources = {path: path.read_text() for path in code_files()}
    everywhere = {k: v for source in sources.values() for k, v in module_constants(source).items()}
    for path, source in sources.items():
        for name in settings_read_by(source, everywhere):
            read.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return read


# -- what the infrastructure sets and the README documents ----------------------------------------


def bicep_app_settings() -> set[str]:
    """The names in api.bicep's `appSettings: [ ... ]`."""
    text = BICEP.read_text()
    start = text.index("appSettings: [")
    depth, end = 0, start
    for end in range(text.index("[", start), len(text)):
        depth += {"[": 1, "]": -1}.get(text[end], 0)
        if depth == 0:
            break
    block = "\n".join(line.split("//", 1)[0] for line in text[start:end].splitlines())
    return set(re.findall(r"\bname:\s*'([^']+)'", block))


def readme_settings() -> dict[str, str]:
    """The README's Settings table: each setting named in a row, and the row's default."""
    text = README.read_text()
    section = text.split("\n## Settings\n", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.lstrip().startswith("|") or set(cells[0]) <= {"-", " "}:
            continue
        previous = ""
        for name in re.findall(r"`([^`]+)`", cells[0]):
            if name.startswith("__") and previous:
                name = previous.split("__", 1)[0] + name
            if SETTING.match(name):
                rows[name] = cells[1]
                previous = name
    return rows


def is_optional(default: str) -> bool:
    return "required" not in default.lower()


def test_the_collectors_find_what_the_code_obviously_reads() -> None:
    """The parsers are not blind: known reads of each kind are found."""
    read = settings_the_code_reads()
    assert {
        "EXPORT_CACHE_SECONDS",
        "HEALTH_WINDOW_TICKS",
        "AzureWebJobsStorage__blobServiceUri",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "HEALTH_SCHEDULE",  # %HEALTH_SCHEDULE% in a decorator
        "EventHubConnection",  # connection="EventHubConnection"
    } <= read.keys(), sorted(read)
    direct = """
NAME = "FROM_A_CONSTANT"
def f(env, os):
    env.get("A_GET"); os.environ["A_SUBSCRIPT"]; os.getenv("A_GETENV"); _number(env, "A_HELPER")
    return "AN_IN" in env, env.get(NAME)
"""
    assert settings_read_by(direct) == {
        "A_GET",
        "A_SUBSCRIPT",
        "A_GETENV",
        "A_HELPER",
        "AN_IN",
        "FROM_A_CONSTANT",
    }
    assert "EVENTHUB_NAME" in bicep_app_settings()
    assert is_optional(readme_settings()["WRITE_CONCURRENCY"])
    assert not is_optional(readme_settings()["AzureWebJobsStorage__queueServiceUri"])


def test_no_code_reads_a_setting_beside_the_model() -> None:
    """Every app setting is read through shared/settings.py's AppSettings: one list of them, with
    types, defaults and bounds, for the infrastructure and the README to be checked against."""
    assert settings_read_outside_the_model() == {}


def test_every_setting_the_code_reads_is_set_by_the_infrastructure_or_documented_as_optional() -> None:
    """A setting missing from infra/app/api.bicep's app settings must be in README's Settings table
    with a default; a connection counts as set when any NAME__... variant is."""
    bicep = bicep_app_settings()
    optional = {name for name, default in readme_settings().items() if is_optional(default)}

    def covered(name: str) -> bool:
        if name in bicep or name in optional:
            return True
        return name in CONNECTION_PREFIXES and any(s.startswith(name + "__") for s in bicep)

    missing = {name: files for name, files in settings_the_code_reads().items() if not covered(name)}
    assert not missing, (
        "settings the code reads that infra/app/api.bicep does not set and README.md's Settings table "
        "does not document as optional:\n"
        + "\n".join(f"  {name} (read in {', '.join(files)})" for name, files in sorted(missing.items()))
    )


def test_every_app_setting_the_infrastructure_sets_is_read() -> None:
    """No stale or misspelt setting in api.bicep: each is read by the code, or is a variant of a
    connection the bindings name (AzureWebJobsStorage__credential, EventHubConnection__clientId, ...)."""
    read = settings_the_code_reads()
    unread = {
        name
        for name in bicep_app_settings()
        if name not in read and name.split("__", 1)[0] not in CONNECTION_PREFIXES
    }
    assert not unread, f"api.bicep sets settings no code reads: {sorted(unread)}"


# -- malformed and missing values -----------------------------------------------------------------

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_the_service_storage_is_required_and_named() -> None:
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        Settings.from_env({})


def test_missing_settings_take_the_documented_defaults() -> None:
    """Each default in README's Settings table is the one the code takes (shared/settings.py,
    shared/health.py)."""
    settings = Settings.from_env(BASE)
    health = settings.health
    actual = {
        "EVENTHUB_NAME": settings.eventhub_name,
        "EVENTHUB_CONSUMER_GROUP": settings.consumer_group,
        "EXPORT_CACHE_SECONDS": settings.export_cache_seconds,
        "WRITE_DEADLINE_SECONDS": settings.write_deadline_seconds,
        "WRITE_CONCURRENCY": settings.write_concurrency,
        "ALLOWED_STORAGE_SUFFIXES": ",".join(settings.allowed_storage_suffixes),
        "ALLOW_PRIVATE_WEBHOOKS": settings.allow_private_webhooks,
        "HEALTH_WINDOW_TICKS": health.window_ticks,
        "HEALTH_FATAL_MIN_FAILURES": health.fatal_min_failures,
        "HEALTH_PERSISTENT_TICKS": health.persistent_ticks,
        "HEALTH_MIN_SUCCESS_RATE": health.min_success_rate,
        "BACKLOG_RETENTION_DAYS": health.retention / timedelta(days=1),
        "HEALTH_PROBE_SECONDS": health.probe_every.total_seconds(),
        "LOCATION_DATABASE_CHECK_SECONDS": settings.location_check_seconds,
    }
    documented = readme_settings()
    assert set(actual) <= set(documented), "defaults the README does not state"
    wrong = {
        name: (documented[name], value)
        for name, value in actual.items()
        if documented[name] != f"`{as_documented(value)}`"
    }
    assert not wrong, f"README default vs the code's: {wrong}"
    assert health == HealthPolicy(
        window_ticks=5,
        fatal_min_failures=1,
        persistent_ticks=3,
        min_success_rate=0.5,
        retention=timedelta(days=7),
        probe_every=timedelta(seconds=60),
    )


def as_documented(value: object) -> str:
    """A default as the README writes it: `false`, `30` (not 30.0), `0.5`."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


NUMBERS = [
    "EXPORT_CACHE_SECONDS",
    "WRITE_DEADLINE_SECONDS",
    "WRITE_CONCURRENCY",
    "HEALTH_WINDOW_TICKS",
    "HEALTH_FATAL_MIN_FAILURES",
    "HEALTH_PERSISTENT_TICKS",
    "HEALTH_MIN_SUCCESS_RATE",
    "BACKLOG_RETENTION_DAYS",
    "HEALTH_PROBE_SECONDS",
    "LOCATION_DATABASE_CHECK_SECONDS",
]


@pytest.mark.parametrize("name", NUMBERS)
def test_an_empty_number_setting_takes_its_default(name: str) -> None:
    """An app setting present but empty (as the portal can leave it) is a missing one."""
    assert Settings.from_env({**BASE, name: ""}) == Settings.from_env(BASE)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EXPORT_CACHE_SECONDS", "thirty"),
        ("EXPORT_CACHE_SECONDS", "-1"),
        ("WRITE_DEADLINE_SECONDS", "0"),
        ("WRITE_CONCURRENCY", "many"),
        ("WRITE_CONCURRENCY", "2.5"),
        ("HEALTH_WINDOW_TICKS", "five"),
        ("HEALTH_WINDOW_TICKS", "0"),
        ("HEALTH_FATAL_MIN_FAILURES", "1.5"),
        ("HEALTH_PERSISTENT_TICKS", "x"),
        ("HEALTH_MIN_SUCCESS_RATE", "half"),
        ("HEALTH_MIN_SUCCESS_RATE", "1.5"),
        ("BACKLOG_RETENTION_DAYS", "a week"),
        ("BACKLOG_RETENTION_DAYS", "-7"),
        ("HEALTH_PROBE_SECONDS", "soon"),
        ("ALLOW_PRIVATE_WEBHOOKS", "maybe"),
        ("LOCATION_DATABASE_CHECK_SECONDS", "hourly"),
        ("LOCATION_DATABASE_BLOB", "GeoLite2-City.mmdb"),
        ("LOCATION_DATABASE_BLOB", "Geo/GeoLite2-City.mmdb"),
        ("LOCATION_DATABASE_BLOB", "geo/"),
    ],
)
def test_a_malformed_setting_fails_naming_itself(name: str, value: str) -> None:
    """Settings.from_env raises SettingsError, whose message names the setting and quotes the value."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BASE, name: value})
    assert name in str(raised.value) and repr(value) in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HEALTH_WINDOW_TICKS", "five"),
        ("HEALTH_FATAL_MIN_FAILURES", "one"),
        ("HEALTH_PERSISTENT_TICKS", "3.5"),
        ("HEALTH_MIN_SUCCESS_RATE", "half"),
        ("BACKLOG_RETENTION_DAYS", "a week"),
        ("HEALTH_PROBE_SECONDS", "soon"),
    ],
)
def test_the_health_policy_names_a_malformed_setting(name: str, value: str) -> None:
    """The health policy's settings, read on their own (as the API's are), name themselves when malformed."""
    with pytest.raises(ValueError, match=name):
        AppSettings.read({name: value}).health()


def test_well_formed_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "EVENTHUB_NAME": "hub",
            "EVENTHUB_CONSUMER_GROUP": "cg",
            "EXPORT_CACHE_SECONDS": "10",
            "WRITE_CONCURRENCY": "4",
            "ALLOWED_STORAGE_SUFFIXES": " .a.example , .b.example ,",
            "HEALTH_MIN_SUCCESS_RATE": "0.9",
            "BACKLOG_RETENTION_DAYS": "3",
        }
    )
    assert (settings.eventhub_name, settings.consumer_group) == ("hub", "cg")
    assert (settings.export_cache_seconds, settings.write_concurrency) == (10, 4)
    assert settings.allowed_storage_suffixes == (".a.example", ".b.example")
    assert settings.health.min_success_rate == 0.9
    assert settings.health.retention == timedelta(days=3)


def test_the_location_database_is_named_once() -> None:
    """A path and a blob at once is an error naming both settings; either alone is read as given."""
    both = {"LOCATION_DATABASE_PATH": "/data/city.mmdb", "LOCATION_DATABASE_BLOB": "geo/city.mmdb"}
    with pytest.raises(SettingsError, match="LOCATION_DATABASE_PATH and LOCATION_DATABASE_BLOB"):
        Settings.from_env({**BASE, **both})
    path = Settings.from_env({**BASE, "LOCATION_DATABASE_PATH": " /data/city.mmdb "})
    blob = Settings.from_env({**BASE, "LOCATION_DATABASE_BLOB": "geo/maxmind/GeoLite2-City.mmdb"})
    assert (path.location_database_path, path.location_configured) == ("/data/city.mmdb", True)
    assert (blob.location_database_blob, blob.location_configured) == ("geo/maxmind/GeoLite2-City.mmdb", True)
    assert not Settings.from_env(BASE).location_configured


def test_a_persistence_longer_than_the_window_is_refused() -> None:
    """Persistent failures are judged over HEALTH_WINDOW_TICKS checks: a longer HEALTH_PERSISTENT_TICKS
    could never postpone an export, so it is an error naming both, not a silent never."""
    with pytest.raises(SettingsError, match="HEALTH_PERSISTENT_TICKS must be at most HEALTH_WINDOW_TICKS"):
        Settings.from_env({**BASE, "HEALTH_PERSISTENT_TICKS": "6"})
    assert Settings.from_env({**BASE, "HEALTH_PERSISTENT_TICKS": "6", "HEALTH_WINDOW_TICKS": "6"})
