"""The destination check on create and on a destination or key change, and its opt-out."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from azure.storage.filedatalake import DataLakeServiceClient
from fastapi.testclient import TestClient

from shared.health.rules import hints
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored
from tests.conftest import LAKE_CUSTOMER, LAKE_CUSTOMER_KEY

pytestmark = pytest.mark.integration

WRONG_KEY = base64.b64encode(b"not the customer's key, 33 bytes!").decode()


def _refused(response: Any, codes: set[str]) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] in codes, error
    assert error["target"] == "destination"
    return error


@pytest.mark.parametrize("kind", ["adls", "blob"])
def test_a_wrong_key_is_refused_with_the_troubleshooting_hint(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime, kind: str
) -> None:
    """Creating an export with a key the account refuses answers 400 DestinationAuthenticationFailed with the hint."""
    body = storage.adls(key=WRONG_KEY) if kind == "adls" else storage.blob(key=WRONG_KEY)
    error = _refused(
        client.put(export_url(project, "k"), json=body, headers=writer), {"DestinationAuthenticationFailed"}
    )
    expected = hints("authentication-failed")
    assert expected and expected[0] in error["message"]
    assert [d["message"] for d in error["details"]] == expected
    assert error["innererror"]["cause"] == "authentication-failed"
    assert WRONG_KEY not in str(error)
    assert stored(service, project) == {}


def test_a_missing_account_is_refused(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime, lake: Any
) -> None:
    """An account that does not exist, or does not answer, is 400 DestinationNotFound or DestinationUnavailable."""
    unknown = storage.adls()
    unknown["destination"]["uri"] = str(lake.url("nosuchaccount")) + "/"
    error = _refused(
        client.put(export_url(project, "a"), json=unknown, headers=writer),
        {"DestinationNotFound", "DestinationUnavailable"},
    )
    assert error["details"], "the hints come with the error"
    silent = storage.blob()
    silent["destination"]["uri"] = "http://127.0.0.1:9/nobody/"
    _refused(
        client.put(export_url(project, "b"), json=silent, headers=writer),
        {"DestinationNotFound", "DestinationUnavailable"},
    )
    assert stored(service, project) == {}


def test_check_destination_false_creates_ahead_of_the_storage(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """?checkDestination=false stores the export without contacting the storage (no filesystem is made)."""
    body = storage.adls("not-yet-there/", key=WRONG_KEY)
    response = client.put(export_url(project, "early") + "?checkDestination=false", json=body, headers=writer)
    assert response.status_code == 201, response.text
    assert list(stored(service, project)) == ["early"]
    lake = DataLakeServiceClient(
        storage.lake_uri, credential={"account_name": LAKE_CUSTOMER, "account_key": LAKE_CUSTOMER_KEY}
    )
    assert not lake.get_file_system_client("not-yet-there").exists()


def test_a_key_change_is_checked_and_a_refused_key_is_not_stored(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """PATCHing a key that the account refuses answers 400 and the working key stays; the opt-out stores it."""
    url = export_url(project, "rekey")
    client.put(url, json=storage.adls(), headers=writer)
    patch = {"destination": {"sharedKey": WRONG_KEY}}
    headers = {**writer, "Content-Type": "application/merge-patch+json"}
    _refused(client.patch(url, json=patch, headers=headers), {"DestinationAuthenticationFailed"})
    assert service.exports.get(project, "rekey")[0].destination.credential.value == LAKE_CUSTOMER_KEY
    opted_out = client.patch(url + "?checkDestination=false", json=patch, headers=headers)
    assert opted_out.status_code == 200
    assert service.exports.get(project, "rekey")[0].destination.credential.value == WRONG_KEY


def test_a_change_that_keeps_the_destination_does_not_contact_it(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, lake: Any
) -> None:
    """Changing only the signals or granularity sends no request to the customer's storage."""
    url = export_url(project, "quiet")
    client.put(url, json=storage.adls(), headers=writer)
    lake.reset_requests()
    response = client.patch(url, json={"signals": ["a"], "granularity": "day"}, headers=writer)
    assert response.status_code == 200
    assert [r for r in lake.requests if r.account == LAKE_CUSTOMER] == []
