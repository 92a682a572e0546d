"""The rules a customer's export definition must follow, as pure checks.

Each check returns the normalized value or raises `PydanticCustomError(code, message)`: the models
(shared.api.models) run them as validators, so a broken rule becomes a 400 with that code and the
property as target. Messages state the rule and never quote the value (it may be a key).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

from shared import location, sas
from shared.layout import MAX_DIRECTORY, MAX_DIRECTORY_DEPTH
from shared.model import SasToken

T = TypeVar("T")

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
ID_RULE = "1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit"
_ID = re.compile(ID_PATTERN)
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Not in a storage path even percent-encoded: C0 and C1 controls, surrogates, private-use characters
# (the naming rules' example is U+E000) and noncharacters (docs/conformance.md, "ADLS Gen2 paths").
_NOT_IN_PATH = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufdd0-\ufdef\ufffe\uffff]")

MAX_SIGNALS = 1000
MAX_SIGNAL_NAME = 256
MAX_SEGMENT = 255
MAX_PATH = 63 + 1 + MAX_DIRECTORY + 1  # `<filesystem>/<directory>/`
KEY_BYTES = (16, 128)  # an Azure storage account key is 64 bytes (88 base64 characters)
SECRET_LENGTH = (16, 512)


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def is_local_host(host: str) -> bool:
    """A storage emulator on this machine: localhost or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class StorageUri:
    """A storage account's endpoint, normalized: `scheme://host[:port][/account]`, no trailing slash."""

    url: str
    host: str
    scheme: str


def storage_uri(value: str, kind: str) -> StorageUri:
    """An account endpoint of the right kind: `https://<account>.<dfs|blob>.<suffix>/`, or a local
    emulator's path-style `http://127.0.0.1:<port>/<account>/`."""
    service = "dfs" if kind == "adls" else "blob"
    shape = f"https://<account>.{service}.core.windows.net/"
    try:
        parsed = urlsplit(value)
        port = parsed.port
    except ValueError:
        raise _error("InvalidStorageUri", f"destination.uri must be a URL like {shape}") from None
    scheme = parsed.scheme.lower()
    host = (parsed.hostname or "").lower()
    if scheme not in {"http", "https"} or not host:
        raise _error("InvalidStorageUri", f"destination.uri must be a URL like {shape}")
    if parsed.username is not None or parsed.password is not None or parsed.query or parsed.fragment:
        raise _error("InvalidStorageUri", "destination.uri must not carry credentials, a query or a fragment")
    netloc = f"[{host}]" if ":" in host else host
    if is_local_host(host):
        account = parsed.path.strip("/")
        if not _ACCOUNT.fullmatch(account):
            raise _error(
                "InvalidStorageUri",
                "a local emulator's destination.uri is path-style: http://127.0.0.1:<port>/<account>/",
            )
        netloc += f":{port}" if port else ""
        return StorageUri(f"{scheme}://{netloc}/{account}", host, scheme)
    if scheme != "https":
        raise _error("InsecureStorageUri", "destination.uri must be an https URL")
    labels = host.split(".")
    if len(labels) < 4 or labels[1] != service or not _ACCOUNT.fullmatch(labels[0]):
        raise _error(
            "InvalidStorageUri",
            f"a {kind} destination.uri is the account's {service} endpoint, like {shape} "
            "(account names are 3 to 24 lowercase letters and digits)",
        )
    if parsed.path not in {"", "/"} or port not in {None, 443}:
        raise _error("InvalidStorageUri", f"destination.uri is the account's endpoint only, like {shape}")
    return StorageUri(f"https://{netloc}", host, scheme)


def storage_name(value: str, what: str) -> str:
    """A filesystem or container name: 3-63 lowercase letters, digits and single hyphens, starting and
    ending with a letter or digit."""
    if not (3 <= len(value) <= 63 and _NAME.fullmatch(value)):
        code = "InvalidFilesystemName" if what == "filesystem" else "InvalidContainerName"
        raise _error(
            code,
            f"the {what} name must be 3 to 63 lowercase letters, digits and single hyphens, starting "
            "and ending with a letter or digit",
        )
    return value


def adls_path(value: str) -> tuple[str, str]:
    """`<filesystem>[/<directory>...][/]` split into the filesystem and the directory.

    The directory follows ADLS Gen2's path rules (no `.` or `..` segment, no segment ending in `.`,
    no control, private-use or noncharacter) and leaves room for what the service builds under it:
    MAX_DIRECTORY characters and MAX_DIRECTORY_DEPTH folders (shared.layout)."""
    if "\\" in value or _NOT_IN_PATH.search(value):
        raise _error(
            "InvalidPath",
            "destination.path must use '/' between segments, and no control, private-use or "
            "noncharacter Unicode characters",
        )
    segments = value.split("/")
    if len(segments) > 1 and segments[-1] == "":
        segments = segments[:-1]  # one trailing slash is allowed
    if any(s == "" for s in segments):
        raise _error("InvalidPath", "destination.path must not start with '/' or have empty segments ('//')")
    if any(s in {".", ".."} for s in segments):
        raise _error("InvalidPath", "destination.path must not have '.' or '..' segments")
    if any(s.endswith(".") for s in segments):
        raise _error("InvalidPath", "no segment of destination.path may end with '.' (ADLS Gen2 refuses it)")
    if any(len(s) > MAX_SEGMENT for s in segments):
        raise _error(
            "InvalidPath", f"each segment of destination.path must be at most {MAX_SEGMENT} characters"
        )
    filesystem = storage_name(segments[0], "filesystem")
    directory = "/".join(segments[1:])
    if len(directory) > MAX_DIRECTORY:
        raise _error(
            "InvalidPath",
            f"the directory in destination.path must be at most {MAX_DIRECTORY} characters, so that the "
            "files written under it stay within Azure's 1,024-character limit",
        )
    if len(segments) - 1 > MAX_DIRECTORY_DEPTH:
        raise _error(
            "InvalidPath",
            f"the directory in destination.path must have at most {MAX_DIRECTORY_DEPTH} folders, so that "
            "the files written under it stay within ADLS Gen2's depth limit",
        )
    return filesystem, directory


def shared_key(value: str) -> str:
    """A storage account access key: base64 of a plausible length."""
    low, high = KEY_BYTES
    try:
        raw = base64.b64decode(value, validate=True) if len(value) <= 4 * high else b""
    except (binascii.Error, ValueError):
        raw = b""
    if not low <= len(raw) <= high:
        raise _error(
            "InvalidSharedKey",
            "destination.sharedKey must be the storage account's access key: base64 of "
            f"{low} to {high} bytes (an Azure key is 88 characters)",
        )
    return value


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CREDENTIALS = ("sharedKey", "sas", "entra")  # a destination's authentication methods: one at a time


def tenant_id(value: str) -> str:
    """A Microsoft Entra tenant id: a GUID (the Directory ID of the tenant's Overview pane), lowercase."""
    if not _GUID.fullmatch(value):
        raise _error(
            "InvalidTenantId",
            "destination.entra.tenantId must be the tenant's id, a GUID like "
            "00000000-0000-0000-0000-000000000000 (Microsoft Entra ID, Overview, Tenant ID)",
        )
    return value.lower()


def sas_token(value: str, kind: str) -> SasToken:
    """A filesystem (adls) or container (blob) SAS with the permissions the export uses (shared.sas)."""
    try:
        return sas.parse(value, kind)
    except sas.SasError as error:
        raise _error("InvalidSas", str(error)) from None


def entra_uri(value: T, uri: object) -> T:
    """Microsoft Entra ID needs an https destination.uri: tokens never travel over plain http (the
    Storage SDKs refuse to send one)."""
    if value is not None and isinstance(uri, str) and not uri.lower().startswith("https://"):
        raise _error(
            "HttpsRequired",
            "destination.entra needs an https destination.uri: tokens are only sent over https",
        )
    return value


def one_credential(given: Iterable[str]) -> None:
    """At most one authentication method per destination."""
    present = set(given)
    names = [name for name in CREDENTIALS if name in present]
    if len(names) > 1:
        raise _error(
            "ConflictingCredentials",
            "give one of destination.sharedKey, destination.sas or destination.entra, "
            f"not {' and '.join(names)}",
        )


def signals(value: Any) -> Any:
    """`"all"`, or a list of 1 to 1000 names of 1 to 256 characters."""
    if value == "all":
        return value
    if not isinstance(value, list):
        raise _error("InvalidSignals", 'signals must be "all" or a list of signal names')
    if not 1 <= len(value) <= MAX_SIGNALS:
        raise _error("InvalidSignals", f'signals must list 1 to {MAX_SIGNALS} names (or be "all")')
    for index, name in enumerate(value):
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_SIGNAL_NAME:
            raise _error(
                "InvalidSignals",
                f"signals[{index}]: a signal name is a string of 1 to {MAX_SIGNAL_NAME} characters",
            )
    return value


def webhook_url(value: str) -> str:
    """An absolute URL (whether the service may call it is shared.api.policy's question)."""
    try:
        parsed = urlsplit(value)
        parsed.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        parsed = urlsplit("")
    if parsed.scheme.lower() not in {"http", "https"} or not parsed.hostname or _CONTROL.search(value):
        raise _error("InvalidWebhook", "notify.webhook must be an absolute https URL")
    return value


def webhook_secret(value: str) -> str:
    low, high = SECRET_LENGTH
    if not low <= len(value) <= high:
        raise _error("InvalidWebhookSecret", f"notify.secret must be {low} to {high} characters")
    return value


def location_field(value: str) -> str:
    """A JSON pointer (RFC 6901) to the client address's field."""
    try:
        location.pointer_tokens(value)
    except location.OptionError as error:
        raise _error("InvalidLocationField", str(error)) from None
    return value


def location_key(value: str) -> str:
    """The top-level member that receives the location."""
    try:
        return location.member_name(value)
    except location.OptionError as error:
        raise _error("InvalidLocationKey", str(error)) from None


def distinct(names: Iterable[str]) -> list[str]:
    return sorted(set(names))


def _error(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)
