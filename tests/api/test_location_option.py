"""The export's `location` option in the API: created, shown, patched and removed; stored in the exports
table; validated with clear errors that do not quote the value; refused while the service has no
location database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.api import create_api
from shared.api.config import ApiSettings
from shared.model import LocationOption
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored
from tests.geodata import write_database

pytestmark = pytest.mark.integration

PATCH = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def located(service: Runtime, tmp_path: Path) -> Runtime:
    """The service with a location database named (LOCATION_DATABASE_PATH)."""
    path = write_database(tmp_path / "city.mmdb")
    return Runtime(dataclasses.replace(service.settings, location_database_path=str(path)))


@pytest.fixture
def api(located: Runtime, api_settings: ApiSettings) -> TestClient:
    return TestClient(create_api(lambda: located.api, settings=api_settings), raise_server_exceptions=False)


def test_an_export_with_the_option_is_created_shown_and_stored(
    api: TestClient, writer: dict[str, str], storage: Storage, project: str, located: Runtime
) -> None:
    """PUT with `location` (defaults filled in: key `location`, anonymize true); GET shows it; the table holds it."""
    url = export_url(project, "geo")
    created = api.put(url, json=storage.adls(location={"ipField": "/context/location/ip"}), headers=writer)
    assert created.status_code == 201, created.text
    expected = {"ipField": "/context/location/ip", "key": "location", "anonymize": True}
    assert created.json()["location"] == expected
    assert api.get(url, headers=writer).json()["location"] == expected
    export, _ = located.exports.get(project, "geo")
    assert export.location == LocationOption("/context/location/ip", "location", True)


def test_an_export_without_the_option_shows_none_and_stores_none(
    api: TestClient, writer: dict[str, str], storage: Storage, project: str, located: Runtime
) -> None:
    """The option is off unless asked for: no `location` in the answer, none in the entity."""
    url = export_url(project, "plain")
    assert api.put(url, json=storage.adls(), headers=writer).status_code == 201
    assert "location" not in api.get(url, headers=writer).json()
    entity = located.exports_table.get_entity(project, "plain")
    assert "location" not in entity and located.exports.get(project, "plain")[0].location is None


def test_the_option_is_patched_member_by_member_and_removed_with_null(
    api: TestClient, writer: dict[str, str], storage: Storage, project: str, located: Runtime
) -> None:
    """A merge patch changes one member and keeps the others; `"location": null` switches it off."""
    url = export_url(project, "geo")
    body = storage.adls(location={"ipField": "/clientIp", "key": "geo"})
    assert api.put(url, json=body, headers=writer).status_code == 201
    patched = api.patch(url, json={"location": {"anonymize": False}}, headers={**writer, **PATCH})
    assert patched.status_code == 200, patched.text
    assert patched.json()["location"] == {"ipField": "/clientIp", "key": "geo", "anonymize": False}
    removed = api.patch(url, json={"location": None}, headers={**writer, **PATCH})
    assert removed.status_code == 200 and "location" not in removed.json()
    assert located.exports.get(project, "geo")[0].location is None
    added = api.patch(url, json={"location": {"ipField": "/ip"}}, headers={**writer, **PATCH})
    assert added.json()["location"] == {"ipField": "/ip", "key": "location", "anonymize": True}


LOCATION_RULES: list[tuple[str, Any, str, str]] = [
    ("no-slash", {"ipField": "zqclient"}, "InvalidLocationField", "location.ipField"),
    ("bad-tilde", {"ipField": "/zq~2"}, "InvalidLocationField", "location.ipField"),
    ("control-character", {"ipField": "/zq\u0007"}, "InvalidLocationField", "location.ipField"),
    ("too-long", {"ipField": "/" + "zq" * 300}, "InvalidValue", "location.ipField"),
    ("missing-field", {"key": "geo"}, "MissingProperty", "location.ipField"),
    ("key-with-space", {"ipField": "/ip", "key": "zq zq"}, "InvalidLocationKey", "location.key"),
    ("key-markup", {"ipField": "/ip", "key": "<zq>"}, "InvalidLocationKey", "location.key"),
    ("key-name", {"ipField": "/ip", "key": "name"}, "InvalidLocationKey", "location.key"),
    ("key-empty", {"ipField": "/ip", "key": ""}, "InvalidLocationKey", "location.key"),
    ("key-on-the-path", {"ipField": "/geo/ip", "key": "geo"}, "LocationKeyInUse", "location"),
    ("anonymize-not-bool", {"ipField": "/ip", "anonymize": "zq"}, "InvalidValue", "location.anonymize"),
    ("unknown-member", {"ipField": "/ip", "zqcolour": 1}, "UnknownProperty", "location.zqcolour"),
    ("not-an-object", "zq", "InvalidValue", "location"),
]


@pytest.mark.parametrize(
    ("rule", "option", "code", "target"), LOCATION_RULES, ids=[r[0] for r in LOCATION_RULES]
)
def test_a_malformed_option_is_refused_clearly(
    api: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    located: Runtime,
    rule: str,
    option: Any,
    code: str,
    target: str,
) -> None:
    """400 with the rule's code and the property as target; the value is not quoted; nothing stored."""
    response = api.put(export_url(project, "geo"), json=storage.adls(location=option), headers=writer)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error.get("target")) == (code, target), error
    if code not in {"UnknownProperty"}:
        assert "zq" not in response.text
    assert stored(located, project) == {}


def test_without_a_database_the_option_is_refused_and_nothing_is_stored(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """The service names no database: PUT and PATCH with `location` answer 400 LocationDatabaseNotConfigured."""
    url = export_url(project, "geo")
    refused = client.put(url, json=storage.adls(location={"ipField": "/clientIp"}), headers=writer)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["target"]) == ("LocationDatabaseNotConfigured", "location")
    assert "LOCATION_DATABASE_BLOB" in error["message"]
    assert stored(service, project) == {}
    assert client.put(url, json=storage.adls(), headers=writer).status_code == 201
    patched = client.patch(url, json={"location": {"ipField": "/clientIp"}}, headers={**writer, **PATCH})
    assert patched.json()["error"]["code"] == "LocationDatabaseNotConfigured"
    assert service.exports.get(project, "geo")[0].location is None


def test_an_option_set_before_the_database_was_removed_stays_until_changed(
    api: TestClient,
    client: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    service: Runtime,
    auth: Callable[..., dict[str, str]],
) -> None:
    """The operator removes the database: exports keep their option; other edits still work; setting it
    anew is refused, removing it is allowed."""
    url = export_url(project, "geo")
    assert (
        api.put(url, json=storage.adls(location={"ipField": "/clientIp"}), headers=writer).status_code == 201
    )
    kept = client.patch(url, json={"signals": ["requests"]}, headers={**writer, **PATCH})
    assert kept.status_code == 200, kept.text
    assert kept.json()["location"]["ipField"] == "/clientIp"
    changed = client.patch(url, json={"location": {"key": "geo"}}, headers={**writer, **PATCH})
    assert changed.json()["error"]["code"] == "LocationDatabaseNotConfigured"
    removed = client.patch(url, json={"location": None}, headers={**writer, **PATCH})
    assert removed.status_code == 200 and "location" not in removed.json()
