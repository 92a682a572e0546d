"""Every validation rule: a 400 in the Azure error shape naming the rule (code) and the property
(target), and a refused request changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored

pytestmark = pytest.mark.integration

Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    """A change to a body: set `a.b` to value."""

    def change(body: dict[str, Any]) -> None:
        *parents, name = path.split(".")
        node = body
        for parent in parents:
            node = node.setdefault(parent, {})
        node[name] = value

    return change


def _drop(path: str) -> Change:
    def change(body: dict[str, Any]) -> None:
        *parents, name = path.split(".")
        node = body
        for parent in parents:
            node = node[parent]
        del node[name]

    return change


def _blob(change: Change) -> tuple[str, Change]:
    return ("blob", change)


ADLS_RULES: list[tuple[str, Change, str, str]] = [
    ("unknown-field", _set("colour", "red"), "UnknownProperty", "colour"),
    (
        "unknown-destination-field",
        _set("destination.accountKey", "x"),
        "UnknownProperty",
        "destination.accountKey",
    ),
    ("read-only-enabled", _set("enabled", False), "UnknownProperty", "enabled"),
    ("read-only-status", _set("status", "active"), "UnknownProperty", "status"),
    (
        "uri-http",
        _set("destination.uri", "http://acct.dfs.core.windows.net/"),
        "InsecureStorageUri",
        "destination.uri",
    ),
    (
        "uri-suffix",
        _set("destination.uri", "https://acct.dfs.evil.example.com/"),
        "StorageHostNotAllowed",
        "destination.uri",
    ),
    (
        "uri-suffix-lookalike",
        _set("destination.uri", "https://acct.dfs.core.windows.net.evil.io/"),
        "StorageHostNotAllowed",
        "destination.uri",
    ),
    (
        "uri-localhost-not-allowed",
        _set("destination.uri", "http://localhost:10000/acct/"),
        "StorageHostNotAllowed",
        "destination.uri",
    ),
    ("uri-private-ip", _set("destination.uri", "https://10.0.0.5/"), "InvalidStorageUri", "destination.uri"),
    (
        "uri-blob-endpoint-for-adls",
        _set("destination.uri", "https://acct.blob.core.windows.net/"),
        "InvalidStorageUri",
        "destination.uri",
    ),
    (
        "uri-query",
        _set("destination.uri", "https://acct.dfs.core.windows.net/?sv=1"),
        "InvalidStorageUri",
        "destination.uri",
    ),
    (
        "uri-credentials",
        _set("destination.uri", "https://me:pw@acct.dfs.core.windows.net/"),
        "InvalidStorageUri",
        "destination.uri",
    ),
    (
        "uri-path",
        _set("destination.uri", "https://acct.dfs.core.windows.net/fs/"),
        "InvalidStorageUri",
        "destination.uri",
    ),
    (
        "uri-port",
        _set("destination.uri", "https://acct.dfs.core.windows.net:8443/"),
        "InvalidStorageUri",
        "destination.uri",
    ),
    ("uri-not-a-url", _set("destination.uri", "not a url"), "InvalidStorageUri", "destination.uri"),
    (
        "uri-ftp",
        _set("destination.uri", "ftp://acct.dfs.core.windows.net/"),
        "InvalidStorageUri",
        "destination.uri",
    ),
    ("filesystem-short", _set("destination.path", "ab/dir/"), "InvalidFilesystemName", "destination.path"),
    (
        "filesystem-uppercase",
        _set("destination.path", "MyFs/dir/"),
        "InvalidFilesystemName",
        "destination.path",
    ),
    (
        "filesystem-double-hyphen",
        _set("destination.path", "my--fs/dir/"),
        "InvalidFilesystemName",
        "destination.path",
    ),
    (
        "filesystem-leading-hyphen",
        _set("destination.path", "-myfs/dir/"),
        "InvalidFilesystemName",
        "destination.path",
    ),
    (
        "filesystem-trailing-hyphen",
        _set("destination.path", "myfs-/"),
        "InvalidFilesystemName",
        "destination.path",
    ),
    (
        "filesystem-underscore",
        _set("destination.path", "my_fs/"),
        "InvalidFilesystemName",
        "destination.path",
    ),
    (
        "filesystem-64-chars",
        _set("destination.path", "f" * 64 + "/"),
        "InvalidFilesystemName",
        "destination.path",
    ),
    ("path-dotdot", _set("destination.path", "myfs/../other/"), "InvalidPath", "destination.path"),
    ("path-dot", _set("destination.path", "myfs/./dir/"), "InvalidPath", "destination.path"),
    ("path-empty-segment", _set("destination.path", "myfs//dir/"), "InvalidPath", "destination.path"),
    ("path-leading-slash", _set("destination.path", "/myfs/dir/"), "InvalidPath", "destination.path"),
    ("path-backslash", _set("destination.path", "myfs\\dir"), "InvalidPath", "destination.path"),
    ("path-control-char", _set("destination.path", "myfs/di\nr/"), "InvalidPath", "destination.path"),
    (
        "key-not-base64",
        _set("destination.sharedKey", "not base64 at all!"),
        "InvalidSharedKey",
        "destination.sharedKey",
    ),
    ("key-too-short", _set("destination.sharedKey", "c2hvcnQ="), "InvalidSharedKey", "destination.sharedKey"),
    ("key-too-long", _set("destination.sharedKey", "QUFB" * 60), "InvalidSharedKey", "destination.sharedKey"),
    ("key-missing-on-create", _drop("destination.sharedKey"), "MissingProperty", "destination"),
    ("signals-empty", _set("signals", []), "InvalidSignals", "signals"),
    ("signals-too-many", _set("signals", [f"s{i}" for i in range(1001)]), "InvalidSignals", "signals"),
    ("signal-name-too-long", _set("signals", ["ok", "n" * 257]), "InvalidSignals", "signals"),
    ("signal-name-empty", _set("signals", [""]), "InvalidSignals", "signals"),
    ("signal-name-not-string", _set("signals", [5]), "InvalidSignals", "signals"),
    ("signals-other-word", _set("signals", "some"), "InvalidSignals", "signals"),
    ("granularity-unknown", _set("granularity", "minute"), "InvalidValue", "granularity"),
    (
        "destination-type-unknown",
        _set("destination.type", "s3"),
        "InvalidDestinationType",
        "destination.type",
    ),
    ("destination-missing", _drop("destination"), "MissingProperty", "destination"),
    ("path-missing", _drop("destination.path"), "MissingProperty", "destination.path"),
    ("webhook-not-url", _set("notify", {"webhook": "nowhere"}), "InvalidWebhook", "notify.webhook"),
    (
        "webhook-secret-short",
        _set("notify", {"webhook": "https://hooks.customer.example/x", "secret": "short"}),
        "InvalidWebhookSecret",
        "notify.secret",
    ),
    (
        "notify-unknown-field",
        _set("notify", {"webhook": "https://hooks.customer.example/x", "url": "x"}),
        "UnknownProperty",
        "notify.url",
    ),
]

BLOB_RULES: list[tuple[str, Change, str, str]] = [
    ("granularity-on-blob", _set("granularity", "hour"), "GranularityNotAllowed", "granularity"),
    (
        "container-uppercase",
        _set("destination.container", "MyContainer"),
        "InvalidContainerName",
        "destination.container",
    ),
    (
        "container-double-hyphen",
        _set("destination.container", "a--b"),
        "InvalidContainerName",
        "destination.container",
    ),
    ("container-short", _set("destination.container", "ab"), "InvalidContainerName", "destination.container"),
    ("container-path-on-blob", _set("destination.path", "myfs/"), "UnknownProperty", "destination.path"),
    (
        "uri-dfs-endpoint-for-blob",
        _set("destination.uri", "https://acct.dfs.core.windows.net/"),
        "InvalidStorageUri",
        "destination.uri",
    ),
]


def _check_refused(response: Any, code: str, target: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error.get("target") == target, error
    assert error["message"]
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(("rule", "change", "code", "target"), ADLS_RULES, ids=[r[0] for r in ADLS_RULES])
def test_put_refuses_an_adls_definition_that_breaks_a_rule(
    client: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    service: Runtime,
    rule: str,
    change: Change,
    code: str,
    target: str,
) -> None:
    """A PUT that breaks the rule answers 400 with its code and target, and neither creates nor replaces."""
    good = storage.adls()
    assert client.put(export_url(project, "kept"), json=good, headers=writer).status_code == 201
    before = stored(service, project)
    etag = client.get(export_url(project, "kept"), headers=writer).headers["ETag"]
    bad = copy.deepcopy(good)
    change(bad)
    _check_refused(client.put(export_url(project, "new"), json=bad, headers=writer), code, target)
    if code != "MissingProperty" or target != "destination":  # a replace may keep its credential
        _check_refused(client.put(export_url(project, "kept"), json=bad, headers=writer), code, target)
    assert stored(service, project) == before
    assert client.get(export_url(project, "kept"), headers=writer).headers["ETag"] == etag


@pytest.mark.parametrize(("rule", "change", "code", "target"), BLOB_RULES, ids=[r[0] for r in BLOB_RULES])
def test_put_refuses_a_blob_definition_that_breaks_a_rule(
    client: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    service: Runtime,
    rule: str,
    change: Change,
    code: str,
    target: str,
) -> None:
    """A Blob PUT that breaks the rule answers 400 with its code and target, and creates nothing."""
    bad = storage.blob()
    change(bad)
    _check_refused(client.put(export_url(project, "new"), json=bad, headers=writer), code, target)
    assert stored(service, project) == {}


PATCH_RULES: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown-field", {"colour": "red"}, "UnknownProperty", "colour"),
    ("read-only-etag", {"etag": "x"}, "UnknownProperty", "etag"),
    ("bad-path", {"destination": {"path": "fs/../x"}}, "InvalidPath", "destination.path"),
    ("bad-filesystem", {"destination": {"path": "UPPER/x"}}, "InvalidFilesystemName", "destination.path"),
    ("bad-key", {"destination": {"sharedKey": "%%%"}}, "InvalidSharedKey", "destination.sharedKey"),
    ("remove-key", {"destination": {"sharedKey": None}}, "MissingProperty", "destination.sharedKey"),
    (
        "http-uri",
        {"destination": {"uri": "http://acct.dfs.core.windows.net/"}},
        "InsecureStorageUri",
        "destination.uri",
    ),
    (
        "foreign-host",
        {"destination": {"uri": "https://acct.dfs.example.org/"}},
        "StorageHostNotAllowed",
        "destination.uri",
    ),
    (
        "new-account-without-key",
        {"destination": {"uri": "https://other.dfs.core.windows.net/"}},
        "MissingProperty",
        "destination",
    ),
    ("empty-signals", {"signals": []}, "InvalidSignals", "signals"),
    (
        "granularity-on-blob",
        {"destination": {"type": "blob", "container": "abc", "path": None}},
        "GranularityNotAllowed",
        "granularity",
    ),
    ("destination-removed", {"destination": None}, "MissingProperty", "destination"),
]


@pytest.mark.parametrize(("rule", "patch", "code", "target"), PATCH_RULES, ids=[r[0] for r in PATCH_RULES])
def test_patch_refuses_a_change_that_breaks_a_rule(
    client: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    service: Runtime,
    rule: str,
    patch: dict[str, Any],
    code: str,
    target: str,
) -> None:
    """A PATCH whose result breaks a rule answers 400 with its code and target, and changes nothing."""
    url = export_url(project, "patched")
    etag = client.put(url, json=storage.adls(), headers=writer).headers["ETag"]
    before = stored(service, project)
    headers = {**writer, "Content-Type": "application/merge-patch+json"}
    _check_refused(client.patch(url, json=patch, headers=headers), code, target)
    assert stored(service, project) == before
    assert client.get(url, headers=writer).headers["ETag"] == etag


@pytest.mark.parametrize(
    ("path", "code", "target"),
    [
        ("/api/projects/p/exports/" + "e" * 64, "InvalidExportId", "exportId"),
        ("/api/projects/p/exports/-leading", "InvalidExportId", "exportId"),
        ("/api/projects/p/exports/sp%20ace", "InvalidExportId", "exportId"),
        ("/api/projects/bad*project/exports/e1", "InvalidProjectId", "projectId"),
        ("/api/projects/.hidden/exports", "InvalidProjectId", "projectId"),
    ],
)
def test_ids_outside_the_pattern_are_refused(
    client: TestClient, auth: Callable[..., dict[str, str]], path: str, code: str, target: str
) -> None:
    """Project and export ids outside [A-Za-z0-9][A-Za-z0-9-_.]{0,62} answer 400 with the id as target."""
    headers = auth("p")
    _check_refused(client.get(path, headers=headers), code, target)
    if "/exports/" in path:
        _check_refused(client.put(path, json={}, headers=headers), code, target)


def test_malformed_bodies_and_media_types_are_refused(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """Bad JSON is 400 InvalidJson, a non-object 400, a missing body 400, a wrong media type 415: none store anything."""
    url = export_url(project, "media")
    json_headers = {**writer, "Content-Type": "application/json"}
    bad_json = client.put(url, content=b'{"destination": ', headers=json_headers)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "InvalidJson"
    not_object = client.put(url, json=["a"], headers=writer)
    assert not_object.status_code == 400 and not_object.json()["error"]["code"] == "InvalidRequestContent"
    empty = client.put(url, content=b"", headers=json_headers)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "MissingRequestBody"
    text = client.put(url, content=b"{}", headers={**writer, "Content-Type": "text/plain"})
    assert text.status_code == 415 and text.json()["error"]["code"] == "UnsupportedMediaType"
    merge_on_put = client.put(
        url, json=storage.adls(), headers={**writer, "Content-Type": "application/merge-patch+json"}
    )
    assert merge_on_put.status_code == 415
    client.put(url, json=storage.adls(), headers=writer)
    xml = client.patch(url, content=b"<a/>", headers={**writer, "Content-Type": "application/xml"})
    assert xml.status_code == 415 and xml.json()["error"]["target"] == "Content-Type"
    assert list(stored(service, project)) == ["media"]


def test_query_parameter_and_routing_errors_use_the_azure_shape(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str
) -> None:
    """A bad checkDestination, an unknown path (404) and an unsupported method (405) answer in the Azure shape."""
    bad_flag = client.put(
        export_url(project, "q") + "?checkDestination=maybe", json=storage.adls(), headers=writer
    )
    assert bad_flag.status_code == 400
    assert bad_flag.json()["error"]["code"] == "InvalidQueryParameter"
    assert bad_flag.json()["error"]["target"] == "checkDestination"
    unknown = client.get("/api/nothing-here", headers=writer)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"
    wrong_method = client.post(f"/api/projects/{project}/exports", headers=writer)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "MethodNotAllowed"
    assert "GET" in wrong_method.headers["Allow"]
    for response in (bad_flag, unknown, wrong_method):
        assert set(response.json()) == {"error"} and "detail" not in response.text


def test_a_body_over_one_mebibyte_is_refused(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """A request body over 1 MiB answers 413 in the Azure shape and stores nothing."""
    body = storage.adls(signals=["n" * 256] * 5000)
    response = client.put(export_url(project, "big"), json=body, headers=writer)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "RequestEntityTooLarge"
    chunks = (b" " * 65536 for _ in range(20))  # no Content-Length: counted as it arrives
    streamed = client.put(
        export_url(project, "big"), content=chunks, headers={**writer, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "RequestEntityTooLarge"
    assert stored(service, project) == {}
