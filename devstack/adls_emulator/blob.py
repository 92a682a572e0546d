"""The Blob REST operations the datalake SDK delegates to (and a few neighbours).

On a hierarchical-namespace account the Blob endpoint sees the same
filesystems (containers) and paths (blobs); directories appear as empty blobs
with ``hdi_isfolder=true`` metadata. Served: List Containers, Create/Delete
Container, Get Container Properties/Metadata, Set Container Metadata, Get Blob
Properties, Get Blob (with ranges), Set Blob Metadata, Set Blob Properties,
Delete Blob, and single-shot Put Blob (BlockBlob).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from xml.sax.saxutils import escape

from .conditions import Conditions
from .errors import error
from .protocol import (
    Request,
    Response,
    content_props_from_headers,
    http_date,
    metadata_from_headers,
    metadata_headers,
    parse_range,
    path_property_headers,
    quoted,
)
from .store import Store

_XML = "application/xml"
_XML_DECLARATION = '\ufeff<?xml version="1.0" encoding="utf-8"?>'
_DEFAULT_MAX_RESULTS = 5000


def _etag_headers(etag: str, last_modified: float) -> list[tuple[str, str]]:
    return [("ETag", quoted(etag)), ("Last-Modified", http_date(last_modified))]


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def _list_containers(store: Store, req: Request, host: str) -> Response:
    prefix = req.query.get("prefix", "")
    marker = req.query.get("marker", "")
    max_results = req.int_param("maxresults") or _DEFAULT_MAX_RESULTS
    include = {part.strip() for part in req.query.get("include", "").split(",")}
    filesystems = [fs for fs in store.list_filesystems(req.account, prefix) if fs.name >= marker]
    page, rest = filesystems[:max_results], filesystems[max_results:]
    parts = [
        _XML_DECLARATION,
        f'<EnumerationResults ServiceEndpoint="http://{escape(host)}/{escape(req.account)}/">',
    ]
    if prefix:
        parts.append(f"<Prefix>{escape(prefix)}</Prefix>")
    if marker:
        parts.append(f"<Marker>{escape(marker)}</Marker>")
    if "maxresults" in req.query:
        parts.append(f"<MaxResults>{max_results}</MaxResults>")
    parts.append("<Containers>")
    for fs in page:
        parts.append(
            f"<Container><Name>{escape(fs.name)}</Name><Properties>"
            f"<Last-Modified>{http_date(fs.last_modified)}</Last-Modified><Etag>{quoted(fs.etag)}</Etag>"
            "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
            "<DefaultEncryptionScope>$account-encryption-key</DefaultEncryptionScope>"
            "<DenyEncryptionScopeOverride>false</DenyEncryptionScopeOverride>"
            "<HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false</HasLegalHold>"
            "<ImmutableStorageWithVersioningEnabled>false</ImmutableStorageWithVersioningEnabled>"
            "</Properties>"
        )
        if "metadata" in include:
            parts.append("<Metadata>")
            parts += [f"<{name}>{escape(value)}</{name}>" for name, value in fs.metadata.items()]
            parts.append("</Metadata>")
        parts.append("</Container>")
    parts.append("</Containers>")
    parts.append(f"<NextMarker>{escape(rest[0].name)}</NextMarker>" if rest else "<NextMarker />")
    parts.append("</EnumerationResults>")
    return Response(200, [("Content-Type", _XML)], "".join(parts).encode("utf-8"))


def _container_properties(store: Store, req: Request) -> Response:
    fs = store.get_filesystem(req.account, req.filesystem)
    headers = [
        *_etag_headers(fs.etag, fs.last_modified),
        *metadata_headers(fs.metadata),
        ("x-ms-lease-status", "unlocked"),
        ("x-ms-lease-state", "available"),
        ("x-ms-has-immutability-policy", "false"),
        ("x-ms-has-legal-hold", "false"),
        ("x-ms-default-encryption-scope", "$account-encryption-key"),
        ("x-ms-deny-encryption-scope-override", "false"),
        ("x-ms-immutable-storage-with-versioning-enabled", "false"),
    ]
    return Response(200, headers)


Operation = Callable[[Store, Request, Conditions], Response]


def handle(store: Store, req: Request, host: str) -> Response:
    """Dispatch a Blob request whose ``operation`` is already classified."""
    conditions = Conditions.from_headers(req.headers)
    if req.operation == "listFilesystems":
        return _list_containers(store, req, host)
    operations = _BLOB_OPERATIONS if req.path else _CONTAINER_OPERATIONS | _BLOB_OPERATIONS
    operation = operations.get(req.operation)
    if operation is None:
        raise error(
            "NotImplemented",
            f"The Blob operation '{req.method} ?{req.raw_query}' is not implemented by the emulator.",
        )
    return operation(store, req, conditions)


def _create_filesystem(store: Store, req: Request, conditions: Conditions) -> Response:
    fs = store.create_filesystem(req.account, req.filesystem, metadata_from_headers(req.header_items))
    return Response(201, _etag_headers(fs.etag, fs.last_modified))


def _delete_filesystem(store: Store, req: Request, conditions: Conditions) -> Response:
    store.delete_filesystem(req.account, req.filesystem, conditions)
    return Response(202)


def _get_filesystem_properties(store: Store, req: Request, conditions: Conditions) -> Response:
    return _container_properties(store, req)


def _set_filesystem_properties(store: Store, req: Request, conditions: Conditions) -> Response:
    fs = store.set_filesystem_metadata(
        req.account, req.filesystem, metadata_from_headers(req.header_items), conditions
    )
    return Response(200, _etag_headers(fs.etag, fs.last_modified))


def _get_properties(store: Store, req: Request, conditions: Conditions) -> Response:
    info = store.get_path(req.account, req.filesystem, req.path)
    conditions.check(info.etag, info.last_modified, read=True)
    headers = path_property_headers(info, blob=True)
    headers += [("x-ms-access-tier", "Hot"), ("x-ms-access-tier-inferred", "true")]
    if req.query.get("comp") == "metadata":
        meta = metadata_headers(info.metadata, info.is_dir)
        return Response(200, [*_etag_headers(info.etag, info.last_modified), *meta])
    return Response(200, headers, content_length=info.size)


def _read(store: Store, req: Request, conditions: Conditions) -> Response:
    info = store.get_path(req.account, req.filesystem, req.path)
    conditions.check(info.etag, info.last_modified, read=True)
    span = parse_range(req.header("x-ms-range") or req.header("range"), info.size)
    start, end = span if span is not None else (0, info.size)
    info, data = store.read(req.account, req.filesystem, req.path, start, end)
    headers = path_property_headers(info, blob=True)
    if span is None:
        return Response(200, headers, data)
    headers = [(name, value) for name, value in headers if name != "Content-MD5"]
    if "content-md5" in info.props:
        headers.append(("x-ms-blob-content-md5", info.props["content-md5"]))
    if (req.header("x-ms-range-get-content-md5") or "").lower() == "true":
        if len(data) > 4 * 1024 * 1024:
            raise error("OutOfRangeInput", "x-ms-range-get-content-md5 needs a range of at most 4 MiB.")
        headers.append(("Content-MD5", _md5(data)))
    headers.append(("Content-Range", f"bytes {start}-{start + len(data) - 1}/{info.size}"))
    return Response(206, headers, data)


def _set_metadata(store: Store, req: Request, conditions: Conditions) -> Response:
    info = store.set_metadata(
        req.account, req.filesystem, req.path, metadata_from_headers(req.header_items), conditions
    )
    encrypted = ("x-ms-request-server-encrypted", "true")
    return Response(200, [*_etag_headers(info.etag, info.last_modified), encrypted])


def _set_properties(store: Store, req: Request, conditions: Conditions) -> Response:
    info = store.set_properties(
        req.account,
        req.filesystem,
        req.path,
        conditions=conditions,
        props=content_props_from_headers(req, "x-ms-blob-"),
        replace_props=True,
    )
    return Response(200, _etag_headers(info.etag, info.last_modified))


def _delete(store: Store, req: Request, conditions: Conditions) -> Response:
    store.delete_path(
        req.account, req.filesystem, req.path, recursive=False, conditions=conditions, blob_api=True
    )
    return Response(202, [("x-ms-delete-type-permanent", "true")])


def _upload(store: Store, req: Request, conditions: Conditions) -> Response:
    blob_type = req.header("x-ms-blob-type")
    if blob_type is None:
        raise error("MissingRequiredHeader", "The x-ms-blob-type header is required.")
    if blob_type != "BlockBlob":
        raise error("NotImplemented", f"Only BlockBlob uploads are emulated, not {blob_type}.")
    props = content_props_from_headers(req, "x-ms-blob-")
    if req.header("content-md5") and _md5(req.body) != req.headers["content-md5"]:
        raise error("Md5Mismatch")
    props.setdefault("content-md5", _md5(req.body))
    info = store.create_path(
        req.account,
        req.filesystem,
        req.path,
        is_dir=False,
        metadata=metadata_from_headers(req.header_items),
        props=props,
        conditions=conditions,
        data=req.body,
    )
    return Response(
        201,
        [
            *_etag_headers(info.etag, info.last_modified),
            ("Content-MD5", props["content-md5"]),
            ("x-ms-request-server-encrypted", "true"),
        ],
    )


_CONTAINER_OPERATIONS: dict[str, Operation] = {
    "createFilesystem": _create_filesystem,
    "deleteFilesystem": _delete_filesystem,
    "getFilesystemProperties": _get_filesystem_properties,
    "setFilesystemProperties": _set_filesystem_properties,
}
_BLOB_OPERATIONS: dict[str, Operation] = {
    "getProperties": _get_properties,
    "read": _read,
    "setMetadata": _set_metadata,
    "setProperties": _set_properties,
    "delete": _delete,
    "upload": _upload,
}
