"""Request/response types and the wire formats both endpoints share."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import unquote
from xml.sax.saxutils import escape

from .errors import StorageError, error
from .store import PathInfo

DEFAULT_VERSION = "2026-02-06"


@dataclass
class Request:
    """A parsed HTTP request addressed to one account.

    ``filesystem`` and ``path`` are percent-decoded (the dfs SDK encodes '/'
    inside the path as %2F, the blob SDK does not); ``raw_path``/``raw_query``
    are kept as received because the SharedKey signature covers them.
    """

    method: str
    raw_path: str
    raw_query: str
    header_items: list[tuple[str, str]]
    body: bytes
    account: str = ""
    filesystem: str = ""
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    api: str = "blob"
    operation: str = "unsupported"

    def __post_init__(self) -> None:
        for name, value in self.header_items:
            lowered = name.lower()
            value = value.strip()
            self.headers[lowered] = f"{self.headers[lowered]},{value}" if lowered in self.headers else value
        for pair in self.raw_query.split("&"):
            if pair:
                name, _, value = pair.partition("=")
                self.query[unquote(name).lower()] = unquote(value)
        segments = unquote(self.raw_path).split("/")
        # "", account, filesystem, path...
        self.account = segments[1] if len(segments) > 1 else ""
        self.filesystem = segments[2] if len(segments) > 2 else ""
        self.path = "/".join(s for s in segments[3:] if s)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def flag(self, name: str) -> bool | None:
        """A boolean query parameter; None when absent."""
        raw = self.query.get(name.lower())
        if raw is None:
            return None
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise error("InvalidQueryParameterValue", f"Value for query parameter '{name}' is invalid: '{raw}'.")

    def int_param(self, name: str) -> int | None:
        raw = self.query.get(name.lower())
        if raw is None:
            return None
        invalid = error("InvalidQueryParameterValue", f"Query parameter '{name}' is invalid: {raw!r}.")
        try:
            value = int(raw)
        except ValueError:
            raise invalid from None
        if value < 0:
            raise invalid
        return value

    @property
    def version(self) -> str:
        return self.headers.get("x-ms-version") or DEFAULT_VERSION

    @property
    def resource_path(self) -> str:
        """``filesystem/path`` relative to the account, as recorded and matched by faults."""
        return "/".join(p for p in (self.filesystem, self.path) if p)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    content_length: int | None = None  # for HEAD: the length a GET would have


def http_date(epoch_seconds: float) -> str:
    return formatdate(epoch_seconds, usegmt=True)


def iso_time_now() -> str:
    """The service's error timestamp format, e.g. 2022-08-18T20:13:31.9923333Z."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 10:07d}Z"


def render_error(err: StorageError, api: str, request_id: str) -> Response:
    """The service's error response for ``err`` on the given endpoint."""
    headers = [("x-ms-error-code", err.code), *err.headers.items()]
    if err.status == 304 or not err.message:
        return Response(err.status, headers)
    message = f"{err.message}\nRequestId:{request_id}\nTime:{iso_time_now()}"
    if api == "dfs":
        body = json.dumps({"error": {"code": err.code, "message": message}}).encode("utf-8")
        return Response(err.status, [("Content-Type", "application/json; charset=utf-8"), *headers], body)
    detail = ""
    if err.detail:
        detail = f"<AuthenticationErrorDetail>{escape(err.detail)}</AuthenticationErrorDetail>"
    xml = (
        '\ufeff<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{escape(err.code)}</Code><Message>{escape(message)}</Message>{detail}</Error>"
    )
    return Response(err.status, [("Content-Type", "application/xml"), *headers], xml.encode("utf-8"))


def quoted(etag: str) -> str:
    return f'"{etag}"'


_META_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def metadata_from_headers(header_items: list[tuple[str, str]]) -> dict[str, str]:
    """x-ms-meta-* headers -> metadata, keeping the names' case as sent."""
    metadata: dict[str, str] = {}
    for name, value in header_items:
        if name.lower().startswith("x-ms-meta-"):
            key = name[len("x-ms-meta-") :]
            if not _META_NAME.match(key):
                raise error("InvalidPropertyName" if key else "InvalidHeaderValue")
            if key.lower() == "hdi_isfolder":
                continue  # system-managed in a hierarchical namespace
            metadata[key] = value.strip()
    return metadata


def metadata_headers(metadata: dict[str, str], is_dir: bool = False) -> list[tuple[str, str]]:
    headers = [(f"x-ms-meta-{key}", value) for key, value in metadata.items()]
    if is_dir:
        headers.append(("x-ms-meta-hdi_isfolder", "true"))
    return headers


def decode_properties(raw: str | None) -> dict[str, str]:
    """x-ms-properties ``name=base64(value),...`` -> dict (dfs properties are blob metadata)."""
    if raw is None or raw.strip() == "":
        return {}
    result: dict[str, str] = {}
    malformed = error("InvalidHeaderValue", "The x-ms-properties header is not in the correct format.")
    for item in raw.split(","):
        name, sep, encoded = item.strip().partition("=")
        if not sep or not name:
            raise malformed
        if not _META_NAME.match(name):
            raise error("InvalidPropertyName")
        try:
            value = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise malformed from None
        result[name] = value
    return result


def encode_properties(metadata: dict[str, str]) -> str:
    def b64(value: str) -> str:
        return base64.b64encode(value.encode("utf-8")).decode("ascii")

    return ",".join(f"{name}={b64(value)}" for name, value in metadata.items())


def parse_range(raw: str | None, size: int) -> tuple[int, int] | None:
    """``bytes=start-[end]`` -> [start, end) clamped to ``size``; None when absent.

    A start at or beyond the end answers 416 InvalidRange, as the service does.
    """
    if raw is None or raw == "":
        return None
    match = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", raw)
    if not match:
        raise error("InvalidHeaderValue")
    start = int(match.group(1))
    end = int(match.group(2)) + 1 if match.group(2) else size
    if end <= start:
        raise error("InvalidRange", headers={"Content-Range": f"bytes */{size}"})
    if start >= size:
        raise error("InvalidRange", headers={"Content-Range": f"bytes */{size}"})
    return start, min(end, size)


_PROP_HEADERS = {
    "content-type": "Content-Type",
    "content-encoding": "Content-Encoding",
    "content-language": "Content-Language",
    "content-disposition": "Content-Disposition",
    "cache-control": "Cache-Control",
}


def content_props_from_headers(request: Request, prefix: str) -> dict[str, str]:
    """Read content properties from ``x-ms-content-*`` (dfs) or ``x-ms-blob-content-*`` (blob) headers."""
    props: dict[str, str] = {}
    for name in (*_PROP_HEADERS, "content-md5"):
        short = name
        if prefix == "x-ms-blob-" and name == "cache-control":
            header = "x-ms-blob-cache-control"
        elif prefix == "x-ms-" and name == "cache-control":
            header = "x-ms-cache-control"
        else:
            header = prefix + short
        value = request.header(header)
        if value is not None and value != "":
            props[name] = value
    return props


def path_property_headers(info: PathInfo, *, blob: bool) -> list[tuple[str, str]]:
    """Headers describing a path, as Get Blob Properties / Path - Get Properties return them."""
    headers: list[tuple[str, str]] = [
        ("Last-Modified", http_date(info.last_modified)),
        ("ETag", quoted(info.etag)),
        ("Accept-Ranges", "bytes"),
        ("Content-Type", info.props.get("content-type", "application/octet-stream")),
    ]
    for name, header in _PROP_HEADERS.items():
        if name != "content-type" and name in info.props:
            headers.append((header, info.props[name]))
    if "content-md5" in info.props:
        headers.append(("Content-MD5", info.props["content-md5"]))
    headers += [
        ("x-ms-creation-time", http_date(info.created)),
        ("x-ms-resource-type", "directory" if info.is_dir else "file"),
        ("x-ms-owner", info.owner),
        ("x-ms-group", info.group),
        ("x-ms-permissions", info.permissions),
        ("x-ms-lease-state", "available"),
        ("x-ms-lease-status", "unlocked"),
        ("x-ms-server-encrypted", "true"),
    ]
    if blob:
        headers += [("x-ms-blob-type", "BlockBlob")]
        headers += metadata_headers(info.metadata, info.is_dir)
    else:
        if info.metadata:
            headers.append(("x-ms-properties", encode_properties(info.metadata)))
    return headers
