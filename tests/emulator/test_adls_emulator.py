"""The ADLS Gen2 emulator, driven by the real azure-storage-file-datalake SDK over HTTP."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from email.utils import formatdate
from pathlib import Path

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient
from azure.storage.filedatalake import DataLakeServiceClient, FileSystemClient

from devstack.adls_emulator import DEFAULT_ACCOUNT, DEFAULT_KEY, AdlsEmulator, Fault, RequestRecord
from devstack.adls_emulator.auth import sign, string_to_sign

OTHER_KEY = base64.b64encode(b"another-test-key-of-32-bytes!!!!").decode()
ROOT = Path(__file__).resolve().parents[2]


def _paths(fs: FileSystemClient, **kwargs: object) -> list[tuple[str, bool]]:
    return [(p.name, bool(p.is_directory)) for p in fs.get_paths(**kwargs)]


# -- filesystems ---------------------------------------------------------------


def test_filesystem_lifecycle(service: DataLakeServiceClient) -> None:
    """Filesystems can be created, seen, listed, refused twice and deleted, like on the service."""
    name = f"life-{uuid.uuid4().hex[:8]}"
    fs = service.create_file_system(name, metadata={"team": "signals"})
    assert fs.exists()
    props = fs.get_file_system_properties()
    assert props.name == name and props.metadata == {"team": "signals"} and props.etag
    assert name in [f.name for f in service.list_file_systems()]
    with pytest.raises(ResourceExistsError) as exists:
        service.create_file_system(name)
    assert exists.value.error_code == "ContainerAlreadyExists"
    fs.delete_file_system()
    assert not fs.exists()
    with pytest.raises(ResourceNotFoundError) as missing:
        fs.get_file_system_properties()
    assert missing.value.error_code == "ContainerNotFound"
    with pytest.raises(ResourceNotFoundError) as missing_paths:
        list(fs.get_paths())
    assert missing_paths.value.error_code == "FilesystemNotFound"


def test_invalid_filesystem_name_is_rejected(service: DataLakeServiceClient) -> None:
    """Names outside 3-63 lowercase letters, digits and single hyphens fail 400 InvalidResourceName."""
    for bad in ("UPPER", "ab", "double--hyphen", "-leading"):
        with pytest.raises(HttpResponseError) as err:
            service.create_file_system(bad)
        assert err.value.status_code == 400
        assert err.value.error_code == "InvalidResourceName"


# -- paths and data ------------------------------------------------------------


def test_create_file_creates_missing_parent_directories(filesystem: FileSystemClient) -> None:
    """Creating a/b/c.json creates real directory entries a and a/b."""
    filesystem.get_file_client("a/b/c.json").create_file()
    assert _paths(filesystem, recursive=True) == [("a", True), ("a/b", True), ("a/b/c.json", False)]
    assert filesystem.get_directory_client("a/b").exists()
    dir_props = filesystem.get_directory_client("a").get_directory_properties()
    assert dir_props.metadata == {"hdi_isfolder": "true"}
    with pytest.raises(ResourceExistsError) as conflict:
        filesystem.get_file_client("a/b/c.json/d").create_file()
    assert conflict.value.error_code == "PathConflict"


def test_append_then_flush_in_two_requests(filesystem: FileSystemClient) -> None:
    """Appended data stays invisible until a flush at the end position commits it."""
    file = filesystem.get_file_client("two-step.json")
    file.create_file()
    file.append_data(b"hello ", offset=0, length=6)
    file.append_data(b"world", offset=6, length=5)
    assert file.get_file_properties().size == 0
    assert file.download_file().readall() == b""
    file.flush_data(11)
    assert file.download_file().readall() == b"hello world"
    file.append_data(b"!", offset=11, length=1)
    file.flush_data(12)
    assert file.download_file().readall() == b"hello world!"


def test_append_with_flush_in_one_request(filesystem: FileSystemClient) -> None:
    """append_data(flush=True) appends and commits in one request, returning the new ETag."""
    file = filesystem.get_file_client("one-step.json")
    created = file.create_file()
    response = file.append_data(b'{"a":1}\n', offset=0, length=8, flush=True)
    assert response["etag"] and response["etag"] != created["etag"]
    file.append_data(b'{"a":2}\n', offset=8, length=8, flush=True)
    assert file.download_file().readall() == b'{"a":1}\n{"a":2}\n'


def test_wrong_positions_are_invalid_flush_position(filesystem: FileSystemClient) -> None:
    """Non-contiguous data or a position other than the committed length fails 400 InvalidFlushPosition."""
    file = filesystem.get_file_client("positions.json")
    file.create_file()
    file.append_data(b"12345", offset=0, length=5)

    def fails(call: object, *args: object, **kwargs: object) -> None:
        with pytest.raises(HttpResponseError) as err:
            call(*args, **kwargs)  # type: ignore[operator]
        assert err.value.status_code == 400
        assert err.value.error_code == "InvalidFlushPosition"
        assert "not contiguous" in str(err.value)

    fails(file.flush_data, 4)  # inside the appended block
    fails(file.flush_data, 6)  # beyond the appended data
    file.flush_data(5)
    file.append_data(b"xx", offset=8, length=2)  # gap 5..8
    fails(file.flush_data, 10)
    fails(file.append_data, b"late", offset=3, length=4)  # below the committed length
    fails(file.append_data, b"skip", offset=9, length=4, flush=True)  # one-shot not at the end
    assert file.download_file().readall() == b"12345"


def test_append_to_missing_path_is_path_not_found(filesystem: FileSystemClient) -> None:
    """Appending to a path that was never created fails 404 PathNotFound."""
    with pytest.raises(ResourceNotFoundError) as err:
        filesystem.get_file_client("nope.json").append_data(b"x", offset=0, length=1)
    assert err.value.error_code == "PathNotFound"


def test_upload_data_overwrite_semantics(filesystem: FileSystemClient) -> None:
    """upload_data(overwrite=False) never creates a file and never replaces one (as on the service)."""
    file = filesystem.get_file_client("upload.json")
    with pytest.raises(ResourceNotFoundError):  # its append hits a missing path
        file.upload_data(b"first", overwrite=False)
    file.create_file()
    with pytest.raises(ResourceModifiedError):  # its flush carries If-None-Match: *
        file.upload_data(b"first", overwrite=False)
    file.upload_data(b"first", overwrite=True)
    with pytest.raises(HttpResponseError) as err:  # its append at 0 is below the committed length
        file.upload_data(b"second", overwrite=False)
    assert err.value.error_code == "InvalidFlushPosition"
    file.upload_data(b"second", overwrite=True)
    assert file.download_file().readall() == b"second"


def test_read_back_with_ranges(filesystem: FileSystemClient) -> None:
    """Ranged downloads return exactly the requested bytes; a start past the end is 416."""
    data = bytes(range(256)) * 40
    file = filesystem.get_file_client("ranges.bin")
    file.upload_data(data, overwrite=True)
    assert file.download_file().readall() == data
    assert file.download_file(offset=100, length=50).readall() == data[100:150]
    assert file.download_file(offset=10_000).readall() == data[10_000:]
    assert file.download_file(offset=10_000, length=10_000).readall() == data[10_000:]
    with pytest.raises(HttpResponseError) as err:
        file.download_file(offset=len(data) + 1, length=5).readall()
    assert err.value.status_code == 416
    empty = filesystem.get_file_client("empty.bin")
    empty.create_file()
    assert empty.download_file().readall() == b""


def test_properties_metadata_and_etag_change_on_commit(filesystem: FileSystemClient) -> None:
    """Each committed change gets a new ETag and Last-Modified; appends alone change neither."""
    file = filesystem.get_file_client("props.json")
    created = file.create_file(metadata={"source": "hub-1", "schema": "v2"})
    props = file.get_file_properties()
    assert props.etag == created["etag"] and props.size == 0
    assert props.metadata == {"source": "hub-1", "schema": "v2"}
    assert props.content_settings.content_type == "application/octet-stream"

    file.append_data(b"abc", offset=0, length=3)
    assert file.get_file_properties().etag == created["etag"]
    flushed = file.flush_data(3)
    after_flush = file.get_file_properties()
    assert after_flush.etag == flushed["etag"] != created["etag"]
    assert after_flush.size == 3 and after_flush.last_modified >= props.last_modified

    file.set_metadata({"source": "hub-2"})
    after_meta = file.get_file_properties()
    assert after_meta.metadata == {"source": "hub-2"}
    assert after_meta.etag != after_flush.etag


def test_conditional_flush_with_stale_etag_fails(filesystem: FileSystemClient) -> None:
    """A flush conditioned on an ETag that a commit has since replaced fails 412 ConditionNotMet."""
    file = filesystem.get_file_client("conditional.json")
    created = file.create_file()
    file.append_data(b"abc", offset=0, length=3)
    file.flush_data(3, etag=created["etag"], match_condition=MatchConditions.IfNotModified)
    file.append_data(b"def", offset=3, length=3)
    with pytest.raises(ResourceModifiedError) as err:
        file.flush_data(6, etag=created["etag"], match_condition=MatchConditions.IfNotModified)
    assert err.value.status_code == 412
    assert err.value.error_code == "ConditionNotMet"
    assert file.download_file().readall() == b"abc"


def test_create_if_none_match_star_on_existing_path_is_409(filesystem: FileSystemClient) -> None:
    """create_file with If-None-Match: * on an existing path fails 409 PathAlreadyExists."""
    file = filesystem.get_file_client("exists.json")
    file.upload_data(b"keep", overwrite=True)
    with pytest.raises(ResourceExistsError) as err:
        file.create_file(match_condition=MatchConditions.IfMissing)
    assert err.value.status_code == 409
    assert err.value.error_code == "PathAlreadyExists"
    assert file.download_file().readall() == b"keep"


def test_rename_overwrites_destination_unless_if_none_match(filesystem: FileSystemClient) -> None:
    """Rename replaces an existing destination; with If-None-Match: * it fails 409 and changes nothing."""
    name = filesystem.file_system_name
    target = filesystem.get_file_client("out/final.json")
    target.upload_data(b"old", overwrite=True)
    staged = filesystem.get_file_client("tmp/staged.json")
    staged.upload_data(b"new", overwrite=True)
    staged_etag = staged.get_file_properties().etag

    with pytest.raises(ResourceExistsError) as err:
        staged.rename_file(f"{name}/out/final.json", match_condition=MatchConditions.IfMissing)
    assert err.value.error_code == "PathAlreadyExists"
    assert staged.download_file().readall() == b"new" and target.download_file().readall() == b"old"

    renamed = staged.rename_file(f"{name}/out/final.json")
    assert renamed.download_file().readall() == b"new"
    assert renamed.get_file_properties().etag == staged_etag  # a rename keeps the ETag
    assert not staged.exists()

    fresh = filesystem.get_file_client("tmp/other.json")
    fresh.upload_data(b"x", overwrite=True)
    fresh.rename_file(f"{name}/out/other.json", match_condition=MatchConditions.IfMissing)
    assert filesystem.get_file_client("out/other.json").exists()


def test_rename_errors(filesystem: FileSystemClient) -> None:
    """A missing source is 404 SourcePathNotFound; a missing destination parent is 404 too."""
    name = filesystem.file_system_name
    with pytest.raises(ResourceNotFoundError) as missing:
        filesystem.get_file_client("ghost.json").rename_file(f"{name}/x.json")
    assert missing.value.error_code == "SourcePathNotFound"
    file = filesystem.get_file_client("here.json")
    file.create_file()
    with pytest.raises(ResourceNotFoundError) as no_parent:
        file.rename_file(f"{name}/no/such/dir/x.json")
    assert no_parent.value.error_code == "RenameDestinationParentPathNotFound"


def test_rename_directory_moves_its_tree(filesystem: FileSystemClient) -> None:
    """Renaming a directory atomically moves everything below it."""
    filesystem.get_file_client("staging/2024/part-1.json").upload_data(b"1", overwrite=True)
    filesystem.get_file_client("staging/2024/part-2.json").upload_data(b"2", overwrite=True)
    filesystem.get_directory_client("staging").rename_directory(f"{filesystem.file_system_name}/published")
    assert _paths(filesystem, recursive=True) == [
        ("published", True),
        ("published/2024", True),
        ("published/2024/part-1.json", False),
        ("published/2024/part-2.json", False),
    ]
    assert not filesystem.get_directory_client("staging").exists()
    assert filesystem.get_file_client("published/2024/part-2.json").download_file().readall() == b"2"


def test_list_paths_recursive_and_not(filesystem: FileSystemClient) -> None:
    """get_paths lists depth-first in name order, with sizes, recursively or one level, paged."""
    for path in ("b/2.json", "b/1.json", "a.json", "b/c/3.json"):
        filesystem.get_file_client(path).upload_data(path.encode(), overwrite=True)
    assert _paths(filesystem, recursive=True) == [
        ("a.json", False),
        ("b", True),
        ("b/1.json", False),
        ("b/2.json", False),
        ("b/c", True),
        ("b/c/3.json", False),
    ]
    assert _paths(filesystem, recursive=False) == [("a.json", False), ("b", True)]
    assert _paths(filesystem, path="b", recursive=False) == [
        ("b/1.json", False),
        ("b/2.json", False),
        ("b/c", True),
    ]
    sizes = {p.name: p.content_length for p in filesystem.get_paths(path="b/c")}
    assert sizes == {"b/c/3.json": len(b"b/c/3.json")}
    assert [p.name for p in filesystem.get_paths(recursive=True, max_results=2)] == [
        name for name, _ in _paths(filesystem, recursive=True)
    ]
    with pytest.raises(ResourceNotFoundError):
        list(filesystem.get_paths(path="nowhere"))


def test_delete_directory_recursive_and_not(filesystem: FileSystemClient) -> None:
    """A non-empty directory survives a non-recursive delete (409 DirectoryNotEmpty); recursive removes it."""
    filesystem.get_file_client("dir/sub/file.json").upload_data(b"x", overwrite=True)
    as_path = filesystem.get_file_client("dir")  # path delete without recursive=true
    with pytest.raises(ResourceExistsError) as err:
        as_path.delete_file()
    assert err.value.error_code == "DirectoryNotEmpty"
    with pytest.raises(ResourceExistsError):
        as_path.delete_file(recursive=False)
    filesystem.get_directory_client("empty").create_directory()
    filesystem.get_file_client("empty").delete_file()
    filesystem.get_directory_client("dir").delete_directory()
    assert _paths(filesystem, recursive=True) == []
    with pytest.raises(ResourceNotFoundError) as gone:
        filesystem.get_file_client("dir/sub/file.json").delete_file()
    assert gone.value.error_code == "PathNotFound"


def test_blob_api_sees_the_same_namespace(emulator: AdlsEmulator, filesystem: FileSystemClient) -> None:
    """azure-storage-blob calls (properties, ranged download, metadata, delete) work on dfs-created data."""
    filesystem.get_file_client("dir/data.bin").upload_data(b"0123456789", overwrite=True)
    with BlobServiceClient(account_url=emulator.url(), credential=DEFAULT_KEY) as blobs:
        container = blobs.get_container_client(filesystem.file_system_name)
        assert container.get_container_properties().name == filesystem.file_system_name
        blob = container.get_blob_client("dir/data.bin")
        assert blob.get_blob_properties().size == 10
        assert blob.download_blob(offset=2, length=3).readall() == b"234"
        blob.set_blob_metadata({"checked": "yes"})
        assert filesystem.get_file_client("dir/data.bin").get_file_properties().metadata == {"checked": "yes"}
        assert container.get_blob_client("dir").get_blob_properties().metadata == {"hdi_isfolder": "true"}
        with pytest.raises(ResourceExistsError):
            container.get_blob_client("dir").delete_blob()  # non-empty directory
        blob.delete_blob()
        assert not filesystem.get_file_client("dir/data.bin").exists()
        with pytest.raises(ResourceNotFoundError) as err:
            blob.get_blob_properties()
        assert err.value.error_code == "BlobNotFound"
        blobs.get_container_client(filesystem.file_system_name).delete_container()
    assert not filesystem.exists()


# -- authentication ----------------------------------------------------------------


def test_wrong_key_is_403_authentication_failed(emulator: AdlsEmulator) -> None:
    """A request signed with the wrong key fails 403 AuthenticationFailed, raised as ClientAuthenticationError."""
    with DataLakeServiceClient(account_url=emulator.url(), credential=OTHER_KEY) as bad:
        with pytest.raises(ClientAuthenticationError) as err:
            bad.create_file_system("never-created")
        assert err.value.status_code == 403
        assert err.value.error_code == "AuthenticationFailed"
        assert "Server failed to authenticate the request" in str(err.value)
        with pytest.raises(ClientAuthenticationError):
            list(bad.get_file_system_client("anything").get_paths())  # dfs JSON error body
        with pytest.raises(ClientAuthenticationError):
            bad.get_file_system_client("anything").get_file_client("f").exists()  # HEAD: no body


def test_key_rotation(emulator: AdlsEmulator) -> None:
    """After set_account_key, clients with the old key get 403 and clients with the new key work."""
    emulator.add_account("rotation", DEFAULT_KEY)
    try:
        old = DataLakeServiceClient(account_url=emulator.url("rotation"), credential=DEFAULT_KEY)
        new = DataLakeServiceClient(account_url=emulator.url("rotation"), credential=OTHER_KEY)
        with old, new:
            old.create_file_system("rotating")
            emulator.set_account_key("rotation", OTHER_KEY)
            with pytest.raises(ClientAuthenticationError):
                old.get_file_system_client("rotating").get_file_system_properties()
            assert new.get_file_system_client("rotating").exists()
    finally:
        emulator.remove_account("rotation")


def test_unknown_and_removed_accounts_are_404_account_not_found(emulator: AdlsEmulator) -> None:
    """Requests to an account the emulator does not have fail 404 AccountNotFound."""
    emulator.add_account("shortlived", OTHER_KEY)
    with DataLakeServiceClient(account_url=emulator.url("shortlived"), credential=OTHER_KEY) as client:
        client.create_file_system("data")
        emulator.remove_account("shortlived")
        with pytest.raises(ResourceNotFoundError) as err:
            client.create_file_system("data")
        assert err.value.error_code == "AccountNotFound"
    emulator.add_account("shortlived", OTHER_KEY)  # re-created account starts empty
    with DataLakeServiceClient(account_url=emulator.url("shortlived"), credential=OTHER_KEY) as client:
        assert [fs.name for fs in client.list_file_systems()] == []
    emulator.remove_account("shortlived")


def test_request_date_more_than_15_minutes_off_is_rejected(emulator: AdlsEmulator) -> None:
    """A correctly signed request dated 20 minutes ago fails 403 AuthenticationFailed."""
    path = f"/{DEFAULT_ACCOUNT}/?comp=list"
    for offset, expected in ((-20 * 60, 403), (0, 200)):
        headers = {"x-ms-date": formatdate(time.time() + offset, usegmt=True), "x-ms-version": "2025-01-05"}
        text = string_to_sign(
            "GET", list(headers.items()), f"/{DEFAULT_ACCOUNT}/", "comp=list", DEFAULT_ACCOUNT
        )
        headers["Authorization"] = f"SharedKey {DEFAULT_ACCOUNT}:{sign(DEFAULT_KEY, text)}"
        connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == expected, body
        if expected == 403:
            assert response.getheader("x-ms-error-code") == "AuthenticationFailed"
            assert b"Request date header too old" in body


# -- faults ----------------------------------------------------------------------------


def test_fault_server_busy_once_then_success(
    emulator: AdlsEmulator, no_retry_service: DataLakeServiceClient, filesystem: FileSystemClient
) -> None:
    """A times=1 503 ServerBusy fault fails exactly one matching request, then removes itself."""
    emulator.add_fault(
        Fault(
            status=503,
            code="ServerBusy",
            message="Ingress is over the account limit.",
            operations={"flush"},
            times=1,
        )
    )
    file = no_retry_service.get_file_system_client(filesystem.file_system_name).get_file_client("busy.json")
    file.create_file()
    file.append_data(b"abc", offset=0, length=3)
    with pytest.raises(HttpResponseError) as err:
        file.flush_data(3)
    assert err.value.status_code == 503 and err.value.error_code == "ServerBusy"
    assert "Ingress is over the account limit." in str(err.value)
    file.flush_data(3)
    assert file.download_file().readall() == b"abc"
    assert emulator.faults.snapshot() == {}


def test_fault_latency_only_delays(emulator: AdlsEmulator, filesystem: FileSystemClient) -> None:
    """A status=None fault with latency delays matching requests, which then succeed."""
    file = filesystem.get_file_client("slow.json")
    file.create_file()
    emulator.add_fault(Fault(status=None, latency=0.3, operations={"getProperties"}))
    started = time.monotonic()
    assert file.get_file_properties().size == 0
    assert time.monotonic() - started >= 0.3


def test_fault_drop_connection(
    emulator: AdlsEmulator, no_retry_service: DataLakeServiceClient, filesystem: FileSystemClient
) -> None:
    """drop_connection closes the socket without a response; the SDK raises a service request/response error."""
    file = no_retry_service.get_file_system_client(filesystem.file_system_name).get_file_client("drop.json")
    file.create_file()
    emulator.reset_requests()
    emulator.add_fault(Fault(drop_connection=True, operations={"append"}, times=1))
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        file.append_data(b"abc", offset=0, length=3)
    file.append_data(b"abc", offset=0, length=3, flush=True)
    assert file.download_file().readall() == b"abc"
    appends = [r for r in emulator.requests if r.operation == "append"]
    assert [r.status for r in appends] == [0, 202]


def test_faults_are_scoped_by_account_and_path(
    emulator: AdlsEmulator, no_retry_service: DataLakeServiceClient, filesystem: FileSystemClient
) -> None:
    """A fault fires only for requests matching its account and path prefix."""
    fs = no_retry_service.get_file_system_client(filesystem.file_system_name)
    emulator.add_fault(
        Fault(
            status=500,
            code="InternalError",
            message="boom",
            path_prefix=f"{filesystem.file_system_name}/broken/",
        )
    )
    emulator.add_fault(Fault(status=500, code="InternalError", message="boom", account="someone-else"))
    fs.get_file_client("fine/ok.json").create_file()
    with pytest.raises(HttpResponseError) as err:
        fs.get_file_client("broken/no.json").create_file()
    assert err.value.status_code == 500


# -- persistence, control, log, CLI ----------------------------------------------------------


def test_state_persists_across_restart(tmp_path: Path) -> None:
    """With a location, filesystems, paths, data, metadata and ETags survive stop and start."""
    location = tmp_path / "adls"
    payload = os.urandom(300_000)
    emu = AdlsEmulator(location=location).start()
    try:
        with DataLakeServiceClient(account_url=emu.url(), credential=DEFAULT_KEY) as client:
            fs = client.create_file_system("persisted", metadata={"owner": "tests"})
            file = fs.get_file_client("deep/dir/data.bin")
            file.create_file(metadata={"kind": "signals"})
            file.append_data(payload[:100_000], offset=0, length=100_000)
            file.append_data(payload[100_000:], offset=100_000, length=200_000)
            file.flush_data(len(payload))
            fs.get_file_client("gone.json").upload_data(b"x", overwrite=True)
            fs.get_file_client("gone.json").delete_file()
            fs.get_file_client("replaced.json").upload_data(b"first", overwrite=True)
            fs.get_file_client("replaced.json").upload_data(b"second", overwrite=True)
            etag = file.get_file_properties().etag
    finally:
        emu.stop()

    emu = AdlsEmulator(location=location).start()
    try:
        with DataLakeServiceClient(account_url=emu.url(), credential=DEFAULT_KEY) as client:
            fs = client.get_file_system_client("persisted")
            assert fs.get_file_system_properties().metadata == {"owner": "tests"}
            file = fs.get_file_client("deep/dir/data.bin")
            props = file.get_file_properties()
            assert props.etag == etag and props.metadata == {"kind": "signals"} and props.size == len(payload)
            assert file.download_file().readall() == payload
            assert _paths(fs, recursive=True) == [
                ("deep", True),
                ("deep/dir", True),
                ("deep/dir/data.bin", False),
                ("replaced.json", False),
            ]
            assert fs.get_file_client("replaced.json").download_file().readall() == b"second"
            file.append_data(b"more", offset=len(payload), length=4, flush=True)
            assert file.get_file_properties().etag != etag
    finally:
        emu.stop()
    assert len(list((location / "blobs").iterdir())) == 2  # replaced/deleted data was cleaned up


def _control(
    emulator: AdlsEmulator, method: str, path: str, body: object | None = None
) -> tuple[int, object]:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        connection.request(method, f"/__emulator/{path}", body=None if body is None else json.dumps(body))
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    return response.status, json.loads(raw) if raw else None


def test_control_http_endpoints(
    emulator: AdlsEmulator, no_retry_service: DataLakeServiceClient, filesystem: FileSystemClient
) -> None:
    """Health, request log, faults and accounts can be driven over HTTP without auth."""
    assert _control(emulator, "GET", "health") == (
        200,
        {"status": "ok", "accounts": emulator.accounts.names()},
    )
    assert _control(emulator, "DELETE", "requests") == (204, None)
    status, created = _control(
        emulator,
        "POST",
        "faults",
        {"status": 503, "code": "ServerBusy", "operations": ["create"], "times": 1},
    )
    assert status == 201 and isinstance(created, dict) and isinstance(created["id"], int)
    file = no_retry_service.get_file_system_client(filesystem.file_system_name).get_file_client("ctl.json")
    with pytest.raises(HttpResponseError):
        file.create_file()
    file.create_file()
    status, log = _control(emulator, "GET", "requests")
    assert status == 200 and isinstance(log, list)
    assert [(r["operation"], r["status"]) for r in log] == [("create", 503), ("create", 201)]
    _control(emulator, "POST", "faults", {"status": 500, "code": "InternalError"})
    assert _control(emulator, "DELETE", "faults") == (204, None)
    file.get_file_properties()

    assert _control(emulator, "PUT", "accounts/ctlacct", {"key": OTHER_KEY})[0] == 201
    with DataLakeServiceClient(account_url=emulator.url("ctlacct"), credential=OTHER_KEY) as other:
        other.create_file_system("hello")
        assert _control(emulator, "PUT", "accounts/ctlacct", {"key": DEFAULT_KEY})[0] == 200
        with pytest.raises(ClientAuthenticationError):
            other.get_file_system_client("hello").get_file_system_properties()
    assert _control(emulator, "DELETE", "accounts/ctlacct") == (204, None)
    assert "ctlacct" not in emulator.accounts.names()
    status, problem = _control(emulator, "POST", "faults", {"status": 503, "bogus": 1})
    assert status == 400 and "bogus" in str(problem)


def test_request_log_records_every_request(emulator: AdlsEmulator, filesystem: FileSystemClient) -> None:
    """emu.requests lists method, logical operation, account, path and status for each request."""
    file = filesystem.get_file_client("logged/file.json")
    emulator.reset_requests()
    file.create_file()
    file.append_data(b"abc", offset=0, length=3)
    file.flush_data(3)
    file.get_file_properties()
    file.download_file().readall()
    path = f"{filesystem.file_system_name}/logged/file.json"
    assert emulator.requests == [
        RequestRecord("PUT", "create", DEFAULT_ACCOUNT, path, 201),
        RequestRecord("PATCH", "append", DEFAULT_ACCOUNT, path, 202),
        RequestRecord("PATCH", "flush", DEFAULT_ACCOUNT, path, 200),
        RequestRecord("HEAD", "getProperties", DEFAULT_ACCOUNT, path, 200),
        RequestRecord("GET", "read", DEFAULT_ACCOUNT, path, 206),
    ]


def test_tens_of_megabytes_stream_through(filesystem: FileSystemClient) -> None:
    """32 MiB appended in 4 MiB chunks is committed and read back intact, quickly."""
    chunk = os.urandom(4 * 1024 * 1024)
    file = filesystem.get_file_client("big.bin")
    file.create_file()
    started = time.monotonic()
    for index in range(8):
        file.append_data(chunk, offset=index * len(chunk), length=len(chunk))
    file.flush_data(8 * len(chunk))
    data = file.download_file().readall()
    assert hashlib.sha256(data).digest() == hashlib.sha256(chunk * 8).digest()
    assert time.monotonic() - started < 10


def test_cli_prints_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The CLI prints its URL when listening, serves the SDK, and exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.adls_emulator",
            "--port",
            "0",
            "--location",
            str(tmp_path),
            "--account",
            f"cliacct:{OTHER_KEY}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line and "cliacct" in line
        base = line.split("listening on ", 1)[1].split()[0]
        with DataLakeServiceClient(account_url=f"{base}/cliacct", credential=OTHER_KEY) as client:
            client.create_file_system("from-cli")
            assert [fs.name for fs in client.list_file_systems()] == ["from-cli"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "index.json").exists()


# -- wire-format compatibility ----------------------------------------------------------------


def test_special_characters_in_paths_round_trip(filesystem: FileSystemClient) -> None:
    """Paths with spaces, unicode, %, +, #, ? and & are signed, stored and listed correctly."""
    names = ["dir with space/f ile.json", "ünïcödé/日本.json", "odd/100%+#?&=.json"]
    for name in names:
        filesystem.get_file_client(name).upload_data(name.encode(), overwrite=True)
    for name in names:
        assert filesystem.get_file_client(name).download_file().readall() == name.encode()
    files = [p.name for p in filesystem.get_paths(recursive=True) if not p.is_directory]
    assert sorted(files) == sorted(names)
    renamed = filesystem.get_file_client(names[2]).rename_file(
        f"{filesystem.file_system_name}/odd/new name?.json"
    )
    assert renamed.download_file().readall() == names[2].encode()


def test_metadata_names_that_stress_header_sorting(filesystem: FileSystemClient) -> None:
    """Many x-ms-meta-* headers, whose canonical order is not plain ASCII order, still authenticate."""
    metadata = {"a": "1", "A_b": "2", "ab": "3", "a1": "4", "Z": "5", "_x": "6", "b_": "7", "Bc": "8"}
    file = filesystem.get_file_client("meta.json")
    file.create_file(metadata=metadata)
    assert file.get_file_properties().metadata == metadata
    file.set_metadata(metadata)
    assert file.get_file_properties().metadata == metadata


def test_parallel_chunked_upload(filesystem: FileSystemClient) -> None:
    """upload_data with parallel appends (arriving out of order) commits the right bytes."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    file = filesystem.get_file_client("parallel.bin")
    file.upload_data(data, overwrite=True, chunk_size=256 * 1024, max_concurrency=4)
    assert file.download_file(max_concurrency=4).readall() == data


def test_blob_upload_list_and_conditional_reads(emulator: AdlsEmulator, filesystem: FileSystemClient) -> None:
    """Put Blob creates parents; list_containers returns metadata; stale If-Match reads fail 412."""
    with BlobServiceClient(account_url=emulator.url(), credential=DEFAULT_KEY) as blobs:
        container = blobs.get_container_client(filesystem.file_system_name)
        container.set_container_metadata({"purpose": "tests"})
        listed = {c.name: c.metadata for c in blobs.list_containers(include_metadata=True)}
        assert listed[filesystem.file_system_name] == {"purpose": "tests"}
        blob = container.get_blob_client("p/q/blob.json")
        blob.upload_blob(b'{"x":1}', metadata={"m": "1"})
        with pytest.raises(ResourceExistsError) as exists:
            blob.upload_blob(b"again")
        assert exists.value.error_code == "BlobAlreadyExists"
        etag = blob.get_blob_properties().etag
        blob.upload_blob(b'{"x":2}', overwrite=True)
        with pytest.raises(ResourceModifiedError):
            blob.download_blob(etag=etag, match_condition=MatchConditions.IfNotModified).readall()
    assert _paths(filesystem, recursive=True) == [("p", True), ("p/q", True), ("p/q/blob.json", False)]
    assert filesystem.get_file_client("p/q/blob.json").download_file().readall() == b'{"x":2}'
