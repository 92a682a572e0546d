"""The ADLS Gen2 (dfs) REST operations: Filesystem - *, Path - *.

Response status codes and headers follow the REST reference and recorded
responses of the real service (e.g. append answers 202 without an ETag,
flush 200 with the new ETag, create/rename 201).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from urllib.parse import unquote

from .conditions import Conditions
from .errors import error
from .protocol import (
    Request,
    Response,
    content_props_from_headers,
    decode_properties,
    encode_properties,
    http_date,
    parse_range,
    path_property_headers,
    quoted,
)
from .store import PathInfo, Store, filetime

_JSON = "application/json; charset=utf-8"
_DEFAULT_MAX_RESULTS = 5000


def _json(status: int, payload: object, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(status, [("Content-Type", _JSON), *(headers or [])], body)


def _etag_headers(etag: str, last_modified: float) -> list[tuple[str, str]]:
    return [("ETag", quoted(etag)), ("Last-Modified", http_date(last_modified))]


def _page(names: list[str], token: str | None, max_results: int) -> tuple[int, int, str | None]:
    """Offset-free paging: the continuation token names the first item of the next page."""
    start = 0
    if token:
        try:
            first = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise error("InvalidQueryParameterValue", "The continuation token is not valid.") from None
        start = next((i for i, name in enumerate(names) if name >= first), len(names))
    end = min(start + max_results, len(names))
    if end >= len(names):
        return start, end, None
    return start, end, base64.urlsafe_b64encode(names[end].encode("utf-8")).decode("ascii")


def _path_json(info: PathInfo) -> dict[str, str]:
    item = {
        "contentLength": str(info.size),
        "creationTime": str(filetime(info.created)),
        "etag": info.etag,
        "expiryTime": "0",
        "group": info.group,
        "lastModified": http_date(info.last_modified),
        "name": info.name,
        "owner": info.owner,
        "permissions": info.permissions,
    }
    if info.is_dir:
        item["isDirectory"] = "true"
    return item


def _default_acl(info: PathInfo) -> str:
    perms = info.permissions.ljust(9, "-")
    return f"user::{perms[0:3]},group::{perms[3:6]},other::{perms[6:9]}"


Operation = Callable[[Store, Request, Conditions], Response]


def handle(store: Store, req: Request) -> Response:
    """Dispatch a dfs request whose ``operation`` is already classified."""
    conditions = Conditions.from_headers(req.headers)
    operation = _OPERATIONS.get(req.operation)
    if operation is None:
        raise error("NotImplemented", f"The dfs operation '{req.method} {req.operation}' is not emulated.")
    return operation(store, req, conditions)


def _list_filesystems(store: Store, req: Request, conditions: Conditions) -> Response:
    prefix = req.query.get("prefix", "")
    filesystems = store.list_filesystems(req.account, prefix)
    max_results = req.int_param("maxResults") or _DEFAULT_MAX_RESULTS
    start, end, token = _page([fs.name for fs in filesystems], req.query.get("continuation"), max_results)
    items = [
        {"etag": fs.etag, "lastModified": http_date(fs.last_modified), "name": fs.name}
        for fs in filesystems[start:end]
    ]
    return _json(200, {"filesystems": items}, [("x-ms-continuation", token)] if token else None)


def _create_filesystem(store: Store, req: Request, conditions: Conditions) -> Response:
    properties = decode_properties(req.header("x-ms-properties"))
    created = store.create_filesystem(req.account, req.filesystem, properties)
    namespace = ("x-ms-namespace-enabled", "true")
    return Response(201, [*_etag_headers(created.etag, created.last_modified), namespace])


def _delete_filesystem(store: Store, req: Request, conditions: Conditions) -> Response:
    store.delete_filesystem(req.account, req.filesystem, conditions)
    return Response(202)


def _get_filesystem_properties(store: Store, req: Request, conditions: Conditions) -> Response:
    fs = store.get_filesystem(req.account, req.filesystem)
    headers = [*_etag_headers(fs.etag, fs.last_modified), ("x-ms-namespace-enabled", "true")]
    if fs.metadata:
        headers.append(("x-ms-properties", encode_properties(fs.metadata)))
    return Response(200, headers)


def _set_filesystem_properties(store: Store, req: Request, conditions: Conditions) -> Response:
    fs = store.set_filesystem_metadata(
        req.account, req.filesystem, decode_properties(req.header("x-ms-properties")), conditions
    )
    return Response(200, _etag_headers(fs.etag, fs.last_modified))


def _list_paths(store: Store, req: Request, conditions: Conditions) -> Response:
    recursive = req.flag("recursive")
    if recursive is None:
        raise error("MissingRequiredQueryParameter", "The query parameter 'recursive' is required.")
    paths = store.list_paths(req.account, req.filesystem, req.query.get("directory", ""), recursive)
    max_results = req.int_param("maxResults") or _DEFAULT_MAX_RESULTS
    start, end, token = _page([p.name for p in paths], req.query.get("continuation"), max_results)
    return _json(
        200,
        {"paths": [_path_json(p) for p in paths[start:end]]},
        [("x-ms-continuation", token)] if token else None,
    )


def _create(store: Store, req: Request, conditions: Conditions) -> Response:
    resource = req.query.get("resource")
    if resource not in ("file", "directory"):
        raise error(
            "InvalidQueryParameterValue" if resource else "MissingRequiredQueryParameter",
            "The query parameter 'resource' must be 'file' or 'directory'.",
        )
    info = store.create_path(
        req.account,
        req.filesystem,
        req.path,
        is_dir=resource == "directory",
        metadata=decode_properties(req.header("x-ms-properties")),
        props=content_props_from_headers(req, "x-ms-"),
        conditions=conditions,
        owner=req.header("x-ms-owner"),
        group=req.header("x-ms-group"),
        permissions=req.header("x-ms-permissions"),
        acl=req.header("x-ms-acl"),
    )
    return Response(
        201, [*_etag_headers(info.etag, info.last_modified), ("x-ms-request-server-encrypted", "true")]
    )


def _rename(store: Store, req: Request, conditions: Conditions) -> Response:
    source = (req.header("x-ms-rename-source") or "").split("?", 1)[0]
    segments = [s for s in unquote(source).split("/") if s]
    if len(segments) < 2:
        raise error("InvalidSourceUri")
    info = store.rename_path(
        req.account,
        req.filesystem,
        req.path,
        source_filesystem=segments[0],
        source_path="/".join(segments[1:]),
        conditions=conditions,
        source_conditions=Conditions.from_headers(req.headers, prefix="x-ms-source-"),
    )
    return Response(201, _etag_headers(info.etag, info.last_modified))


def _append(store: Store, req: Request, conditions: Conditions) -> Response:
    position = req.int_param("position")
    if position is None:
        raise error("MissingRequiredQueryParameter", "The query parameter 'position' is required.")
    flush = bool(req.flag("flush"))
    info = store.append(
        req.account,
        req.filesystem,
        req.path,
        position=position,
        data=req.body,
        flush=flush,
        content_md5=req.header("content-md5") or None,
    )
    headers = [("x-ms-request-server-encrypted", "true")]
    if req.header("content-md5"):
        headers.append(("Content-MD5", req.headers["content-md5"]))
    if flush:
        headers += _etag_headers(info.etag, info.last_modified)
    return Response(202, headers)


def _flush(store: Store, req: Request, conditions: Conditions) -> Response:
    position = req.int_param("position")
    if position is None:
        raise error("MissingRequiredQueryParameter", "The query parameter 'position' is required.")
    if req.body:
        raise error("ContentLengthMustBeZero")
    info = store.flush(
        req.account,
        req.filesystem,
        req.path,
        position=position,
        retain_uncommitted=bool(req.flag("retainUncommittedData")),
        conditions=conditions,
        props=content_props_from_headers(req, "x-ms-"),
    )
    return Response(
        200,
        [*_etag_headers(info.etag, info.last_modified), ("x-ms-request-server-encrypted", "false")],
    )


def _set_properties(store: Store, req: Request, conditions: Conditions) -> Response:
    raw = req.header("x-ms-properties")
    info = store.set_properties(
        req.account,
        req.filesystem,
        req.path,
        conditions=conditions,
        props=content_props_from_headers(req, "x-ms-"),
        metadata=None if raw is None else decode_properties(raw),
    )
    return Response(200, _etag_headers(info.etag, info.last_modified))


def _set_access_control(store: Store, req: Request, conditions: Conditions) -> Response:
    info = store.set_properties(
        req.account,
        req.filesystem,
        req.path,
        conditions=conditions,
        owner=req.header("x-ms-owner"),
        group=req.header("x-ms-group"),
        permissions=req.header("x-ms-permissions"),
        acl=req.header("x-ms-acl"),
    )
    return Response(200, _etag_headers(info.etag, info.last_modified))


def _get_properties(store: Store, req: Request, conditions: Conditions) -> Response:
    info = store.get_path(req.account, req.filesystem, req.path)
    conditions.check(info.etag, info.last_modified, read=True)
    if req.operation == "getAccessControl":
        headers = [
            *_etag_headers(info.etag, info.last_modified),
            ("x-ms-owner", info.owner),
            ("x-ms-group", info.group),
            ("x-ms-permissions", info.permissions),
            ("x-ms-acl", info.acl or _default_acl(info)),
        ]
        return Response(200, headers)
    return Response(200, path_property_headers(info, blob=False), content_length=info.size)


def _read(store: Store, req: Request, conditions: Conditions) -> Response:
    info = store.get_path(req.account, req.filesystem, req.path)
    conditions.check(info.etag, info.last_modified, read=True)
    span = parse_range(req.header("range") or req.header("x-ms-range"), info.size)
    start, end = span if span is not None else (0, info.size)
    info, data = store.read(req.account, req.filesystem, req.path, start, end)
    headers = path_property_headers(info, blob=False)
    if span is None:
        return Response(200, headers, data)
    headers.append(("Content-Range", f"bytes {start}-{start + len(data) - 1}/{info.size}"))
    return Response(206, headers, data)


def _delete(store: Store, req: Request, conditions: Conditions) -> Response:
    store.delete_path(
        req.account, req.filesystem, req.path, recursive=bool(req.flag("recursive")), conditions=conditions
    )
    return Response(200)


_OPERATIONS: dict[str, Operation] = {
    "listFilesystems": _list_filesystems,
    "createFilesystem": _create_filesystem,
    "deleteFilesystem": _delete_filesystem,
    "getFilesystemProperties": _get_filesystem_properties,
    "setFilesystemProperties": _set_filesystem_properties,
    "listPaths": _list_paths,
    "create": _create,
    "rename": _rename,
    "append": _append,
    "flush": _flush,
    "setProperties": _set_properties,
    "setAccessControl": _set_access_control,
    "getProperties": _get_properties,
    "getAccessControl": _get_properties,
    "read": _read,
    "delete": _delete,
}
