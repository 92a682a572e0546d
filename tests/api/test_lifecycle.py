"""The life of an export through the API: create, read, list, change, disable, enable, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.filedatalake import DataLakeServiceClient
from fastapi.testclient import TestClient

from shared.model import ExportStatus, Granularity
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url
from tests.conftest import BLOB_CUSTOMER, BLOB_CUSTOMER_KEY, LAKE_CUSTOMER, LAKE_CUSTOMER_KEY

pytestmark = pytest.mark.integration

NEW_LAKE_KEY = LAKE_CUSTOMER_KEY  # the emulator takes one key per account; a "new" key is the same one


def test_adls_export_full_life(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime, lake: Any
) -> None:
    """An ADLS export is created (201, filesystem made), read, listed, patched, disabled, enabled and deleted."""
    url = export_url(project, "lake-1")
    body = storage.adls("lakefs-life/dir1/dir2/", signals=["requests", "traces"])

    created = client.put(url, json=body, headers=writer)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["id"] == "lake-1" and out["projectId"] == project
    assert out["destination"] == {
        "type": "adls",
        "uri": storage.lake_uri,
        "path": "lakefs-life/dir1/dir2/",
        "authentication": "sharedKey",
        "hasSharedKey": True,
    }
    assert out["signals"] == ["requests", "traces"] and out["granularity"] == "hour"
    assert out["enabled"] is True and out["status"] == "active"
    assert created.headers["ETag"] == out["etag"]
    assert created.headers["Location"] == url
    service_client = DataLakeServiceClient(
        storage.lake_uri, credential={"account_name": LAKE_CUSTOMER, "account_key": LAKE_CUSTOMER_KEY}
    )
    assert service_client.get_file_system_client("lakefs-life").exists()

    read = client.get(url, headers=writer)
    assert read.status_code == 200 and read.json() == out and read.headers["ETag"] == out["etag"]
    listed = client.get(f"/api/projects/{project}/exports", headers=writer)
    assert listed.status_code == 200 and listed.json() == {"value": [out]}

    patched = client.patch(
        url,
        json={"signals": ["requests"], "granularity": "day", "destination": {"sharedKey": NEW_LAKE_KEY}},
        headers={**writer, "Content-Type": "application/merge-patch+json", "If-Match": out["etag"]},
    )
    assert patched.status_code == 200, patched.text
    changed = patched.json()
    assert changed["signals"] == ["requests"] and changed["granularity"] == "day"
    assert changed["etag"] != out["etag"] and changed["createdAt"] == out["createdAt"]
    assert changed["updatedAt"] > out["updatedAt"]
    export, _ = service.exports.get(project, "lake-1")
    assert export.signals == frozenset({"requests"}) and export.granularity is Granularity.DAY

    disabled = client.post(url + "/disable", headers=writer)
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert service.exports.get(project, "lake-1")[0].enabled is False
    enabled = client.post(url + "/enable", headers=writer)
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True

    deleted = client.delete(url, headers=writer)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = client.get(url, headers=writer)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ExportNotFound"
    assert client.delete(url, headers=writer).status_code == 404
    assert service_client.get_file_system_client("lakefs-life").exists(), "exported data stays"


def test_blob_export_full_life(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """A Blob export is created (container made), read, patched, disabled, enabled and deleted; it has no granularity."""
    url = export_url(project, "blob-1")
    created = client.put(url, json=storage.blob("blob-life"), headers=writer)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["destination"] == {
        "type": "blob",
        "uri": storage.blob_uri,
        "container": "blob-life",
        "authentication": "sharedKey",
        "hasSharedKey": True,
    }
    assert "granularity" not in out and out["signals"] == "all"
    blobs = BlobServiceClient(
        storage.blob_uri, credential={"account_name": BLOB_CUSTOMER, "account_key": BLOB_CUSTOMER_KEY}
    )
    assert blobs.get_container_client("blob-life").exists()

    assert client.get(url, headers=writer).json() == out
    patched = client.patch(
        url,
        json={"signals": ["exceptions"], "destination": {"sharedKey": BLOB_CUSTOMER_KEY}},
        headers={**writer, "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["signals"] == ["exceptions"]
    assert client.post(url + "/disable", headers=writer).json()["enabled"] is False
    assert client.post(url + "/enable", headers=writer).json()["enabled"] is True
    assert client.delete(url, headers=writer).status_code == 204
    assert client.get(url, headers=writer).status_code == 404
    assert service.exports.list(project) == []


def test_replace_keeps_status_enabled_key_and_creation_time(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """PUT on an existing export answers 200, keeps its health status, enabled flag, key and createdAt."""
    url = export_url(project, "replace-1")
    body = storage.adls("replace-fs/")
    first = client.put(url, json=body, headers=writer).json()
    client.post(url + "/disable", headers=writer)
    service.exports.set_status(project, "replace-1", ExportStatus.POSTPONED, cause="throttled")

    without_key = storage.adls("replace-fs/other/", signals=["a"])
    del without_key["destination"]["sharedKey"]
    replaced = client.put(url, json=without_key, headers=writer)
    assert replaced.status_code == 200, replaced.text
    out = replaced.json()
    assert out["status"] == "postponed" and out["enabled"] is False
    assert out["createdAt"] == first["createdAt"] and out["destination"]["path"] == "replace-fs/other/"
    assert service.exports.get(project, "replace-1")[0].destination.credential.value == LAKE_CUSTOMER_KEY


def test_merge_patch_null_removes_and_json_content_type_is_accepted(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str
) -> None:
    """A merge patch with null resets an optional member (granularity back to hourly), and application/json is accepted too."""
    url = export_url(project, "nulls")
    client.put(url, json=storage.adls(signals=["a", "b"], granularity="day"), headers=writer)
    patched = client.patch(url, json={"granularity": None}, headers=writer)
    assert patched.status_code == 200, patched.text
    assert patched.json()["signals"] == ["a", "b"] and patched.json()["granularity"] == "hour"
    same = client.patch(url, json={}, headers=writer)
    assert same.status_code == 200 and same.json()["etag"] == patched.json()["etag"]


def test_switching_destination_type_needs_the_new_account_key(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """Moving an export to another account without its key is refused; with the key, it moves."""
    url = export_url(project, "mover")
    client.put(url, json=storage.adls(), headers=writer)
    move: dict[str, Any] = {
        "destination": {"type": "blob", "uri": storage.blob_uri, "container": "moved-here", "path": None},
        "granularity": None,
    }
    refused = client.patch(url, json=move, headers=writer)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "MissingProperty"
    assert refused.json()["error"]["target"] == "destination"
    assert service.exports.get(project, "mover")[0].destination.kind == "adls"
    move["destination"]["sharedKey"] = BLOB_CUSTOMER_KEY
    moved = client.patch(url, json=move, headers=writer)
    assert moved.status_code == 200, moved.text
    assert moved.json()["destination"]["container"] == "moved-here"


def test_list_all_exports_shows_granted_projects_only(
    client: TestClient,
    auth: Callable[..., dict[str, str]],
    storage: Storage,
    new_id: Callable[[], str],
) -> None:
    """GET /api/exports lists the exports of the caller's projects and no others'; an operator sees all."""
    mine, theirs = f"mine-{new_id()}", f"theirs-{new_id()}"
    client.put(export_url(mine, "a"), json=storage.adls(), headers=auth(mine))
    client.put(export_url(theirs, "b"), json=storage.adls(), headers=auth(theirs))
    seen = client.get("/api/exports", headers=auth(mine, role="reader")).json()["value"]
    assert {(e["projectId"], e["id"]) for e in seen} == {(mine, "a")}
    everything = client.get("/api/exports", headers=auth(roles=["Exports.Admin"])).json()["value"]
    assert {(mine, "a"), (theirs, "b")} <= {(e["projectId"], e["id"]) for e in everything}


def test_putting_the_same_definition_again_changes_nothing(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str
) -> None:
    """PUT is idempotent: the same definition again answers 200 with the same ETag and times."""
    url = export_url(project, "same")
    body = storage.adls()
    first = client.put(url, json=body, headers=writer)
    again = client.put(url, json=body, headers={**writer, "If-Match": first.headers["ETag"]})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()


def test_replay_placement_is_set_read_and_patched(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """`replayPlacement`: "current" unless asked; "original" kept in the store and shown; patched back;
    any other value refused at its field."""
    url = export_url(project, "placement")
    created = client.put(url, json=storage.adls(), headers=writer).json()
    assert created["replayPlacement"] == "current"
    original = client.patch(url, json={"replayPlacement": "original"}, headers=writer)
    assert original.status_code == 200, original.text
    assert original.json()["replayPlacement"] == "original"
    assert service.exports.get(project, "placement")[0].replay_placement.value == "original"
    refused = client.patch(url, json={"replayPlacement": "sometime"}, headers=writer)
    assert refused.status_code == 400 and refused.json()["error"]["target"] == "replayPlacement"
    back = client.patch(url, json={"replayPlacement": "current"}, headers=writer)
    assert back.json()["replayPlacement"] == "current"
