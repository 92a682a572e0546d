"""Resume, the health view, and the resume that follows a fix of a postponed export's destination."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from shared.model import ExportStatus
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url
from tests.conftest import LAKE_CUSTOMER_KEY

pytestmark = pytest.mark.integration

WRONG_KEY = base64.b64encode(b"not the customer's key, 33 bytes!").decode()


def test_resume_reactivates_a_postponed_export(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """POST resume on a postponed export whose destination works answers 202 with the export active again."""
    url = export_url(project, "p1")
    client.put(url, json=storage.adls(), headers=writer)
    service.exports.set_status(project, "p1", ExportStatus.POSTPONED, cause="authentication-failed")
    response = client.post(url + "/resume", headers=writer)
    assert response.status_code == 202, response.text
    assert response.json()["export"]["status"] == "active"
    assert response.json()["workItems"] == 0
    assert response.headers["ETag"] == response.json()["export"]["etag"]
    assert service.exports.get(project, "p1")[0].status is ExportStatus.ACTIVE


def test_resume_refused_while_the_destination_still_fails(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """Resuming while the account still refuses the key answers 409 DestinationStillFailing with the hints."""
    url = export_url(project, "p2")
    client.put(url + "?checkDestination=false", json=storage.adls(key=WRONG_KEY), headers=writer)
    service.exports.set_status(project, "p2", ExportStatus.POSTPONED, cause="authentication-failed")
    response = client.post(url + "/resume", headers=writer)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "DestinationStillFailing"
    assert error["details"] and all(d["code"] == "Hint" for d in error["details"])
    assert error["innererror"]["cause"] == "authentication-failed"
    assert service.exports.get(project, "p2")[0].status is ExportStatus.POSTPONED


def test_fixing_the_key_of_a_postponed_export_resumes_it(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """A PATCH that gives a postponed export a working key checks it, then resumes the export."""
    url = export_url(project, "p3")
    client.put(url + "?checkDestination=false", json=storage.adls(key=WRONG_KEY), headers=writer)
    service.exports.set_status(project, "p3", ExportStatus.POSTPONED, cause="authentication-failed")
    response = client.patch(url, json={"destination": {"sharedKey": LAKE_CUSTOMER_KEY}}, headers=writer)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert service.exports.get(project, "p3")[0].status is ExportStatus.ACTIVE


def test_a_disabled_export_is_enabled_not_resumed(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str
) -> None:
    """Resume on an export its customer disabled answers 409 ExportDisabled: enable exports new signals only."""
    url = export_url(project, "p4")
    client.put(url, json=storage.adls(), headers=writer)
    client.post(url + "/disable", headers=writer)
    response = client.post(url + "/resume", headers=writer)
    assert response.status_code == 409 and response.json()["error"]["code"] == "ExportDisabled"


def test_health_view_is_served_for_the_projects_exports(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str
) -> None:
    """GET health answers the health view as JSON; an unknown export is 404."""
    url = export_url(project, "h1")
    client.put(url, json=storage.adls(), headers=writer)
    response = client.get(url + "/health", headers=writer)
    assert response.status_code == 200, response.text
    view = response.json()
    assert isinstance(view, dict) and view
    assert "active" in response.text
    missing = client.get(export_url(project, "nope", "health"), headers=writer)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ExportNotFound"
