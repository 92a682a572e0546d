"""How signals are sent: the two destination kinds behind one FileSink, and the one retry policy.

The Azure SDKs' own retries are switched off (`retry_total=0`) so that there is exactly one retry
layer: `write_with_retry`, which retries only throttling and transient failures, within a deadline.
Retrying is safe because delivery is idempotent (see shared.delivery).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

import stamina
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.filedatalake import DataLakeServiceClient, FileSystemClient

from shared.delivery import FileGone, FileInfo, FileSink, PositionConflict
from shared.model import AdlsDestination, BlobDestination, Destination
from shared.outcomes import STORAGE_ERRORS, WriteFailure, classify, error_code, is_storage_error

T = TypeVar("T")

MAX_APPEND_BLOCK = 4 * 1024 * 1024  # an append blob block (Append Block, x-ms-version 2019-12-12+)
MAX_ADLS_APPEND = 4000 * 1024 * 1024  # one ADLS Gen2 append request (Path - Update, action=append)
OWNER = "signalsexport"  # metadata: the owner mark a file was created with (shared.delivery)
_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 20}
_GONE_CODES = {"PathNotFound", "BlobNotFound"}
PROBE_FILE = ".signals-export-probe"  # each check writes its own: PROBE_FILE-<random hex>


def account_name(account_url: str) -> str:
    """The storage account named by a URL: the host's first label, or the first path segment of a
    path-style local emulator URL such as http://127.0.0.1:10000/devstoreaccount1."""
    parsed = urlparse(account_url)
    host = parsed.hostname or ""
    if host.replace(".", "").isdigit() or host == "localhost" or "." not in host:
        return parsed.path.strip("/").split("/")[0]
    return host.split(".")[0]


class DestinationClients:
    """SDK clients for customers' destinations, created once per process and reused across batches."""

    def __init__(self, client_options: dict[str, Any] | None = None) -> None:
        self._options = {**_CLIENT_OPTIONS, **(client_options or {})}
        self._lock = threading.Lock()
        self._clients: dict[Destination, FileSystemClient | ContainerClient] = {}

    def sink(self, destination: Destination) -> FileSink:
        if isinstance(destination, AdlsDestination):
            return AdlsSink(self.filesystem(destination))
        return AppendBlobSink(self.container(destination))

    def filesystem(self, destination: AdlsDestination) -> FileSystemClient:
        return cast(FileSystemClient, self._client(destination))

    def container(self, destination: BlobDestination) -> ContainerClient:
        return cast(ContainerClient, self._client(destination))

    def _client(self, destination: Destination) -> FileSystemClient | ContainerClient:
        with self._lock:
            client = self._clients.get(destination)
            if client is None:
                credential = {
                    "account_name": account_name(destination.account_url),
                    "account_key": destination.key.value,
                }
                if isinstance(destination, AdlsDestination):
                    client = DataLakeServiceClient(
                        destination.account_url, credential=credential, **self._options
                    ).get_file_system_client(destination.filesystem)
                else:
                    client = BlobServiceClient(
                        destination.account_url, credential=credential, **self._options
                    ).get_container_client(destination.container)
                self._clients[destination] = client
            return client

    def prepare(self, destination: Destination) -> None:
        """Create the filesystem or container if missing. Done when an export is created or resumed,
        never by live writes: a filesystem deleted later postpones the export instead of being
        silently recreated."""
        try:
            if isinstance(destination, AdlsDestination):
                self.filesystem(destination).create_file_system()
            else:
                self.container(destination).create_container()
        except ResourceExistsError:
            pass
        except STORAGE_ERRORS as error:
            raise classify(error) from None

    def probe(self, destination: Destination) -> WriteFailure | None:
        """A cheap read of the filesystem's or container's properties: None when it answers."""
        try:
            if isinstance(destination, AdlsDestination):
                self.filesystem(destination).get_file_system_properties()
            else:
                self.container(destination).get_container_properties()
        except STORAGE_ERRORS as error:
            return classify(error)
        return None

    def probe_write(self, destination: Destination) -> WriteFailure | None:
        """Prove that the service can write: create, append to and delete a small probe file. Used when
        an export is created, its key changes, or it is resumed.

        Each check writes a file of its own (a random name), so checks of several exports on one
        filesystem or container at once never meet. A probe left by a failed check is deleted too,
        as far as the storage still lets us."""
        sink = self.sink(destination)
        path = f"{PROBE_FILE}-{secrets.token_hex(8)}"
        try:
            sink.create(path)
            sink.append(path, b"\n", 0)
            self._delete(destination, path)
        except STORAGE_ERRORS as error:
            self._clean_up(destination, path)
            return classify(error)
        except BaseException:
            self._clean_up(destination, path)
            raise
        return None

    def _clean_up(self, destination: Destination, path: str) -> None:
        """Delete a failed check's probe, if it was made (its create may have landed unanswered)."""
        try:
            self._delete(destination, path)
        except Exception:  # noqa: S110, BLE001  # nothing made, or refused: the check failed already
            pass

    def _delete(self, destination: Destination, path: str) -> None:
        if isinstance(destination, AdlsDestination):
            self.filesystem(destination).get_file_client(path).delete_file()
        else:
            self.container(destination).get_blob_client(path).delete_blob()


class AdlsSink:
    """ADLS Gen2 files: one append-with-flush request per write, positioned."""

    max_append = MAX_ADLS_APPEND

    def __init__(self, filesystem: FileSystemClient) -> None:
        self._filesystem = filesystem

    def create(self, path: str, owner: str = "") -> bool:
        try:
            self._filesystem.get_file_client(path).create_file(
                metadata={OWNER: owner} if owner else None, match_condition=MatchConditions.IfMissing
            )
        except ResourceExistsError:
            return False
        return True

    def length(self, path: str) -> int | None:
        info = self.describe(path)
        return None if info is None else info.length

    def describe(self, path: str) -> FileInfo | None:
        try:
            props = self._filesystem.get_file_client(path).get_file_properties()
        except ResourceNotFoundError as error:
            if error_code(error) in _GONE_CODES or not error_code(error):
                return None
            raise
        return FileInfo(int(props.size), str((props.metadata or {}).get(OWNER, "")))

    def append(self, path: str, data: bytes, position: int) -> int:
        try:
            self._filesystem.get_file_client(path).append_data(
                data, offset=position, length=len(data), flush=True
            )
        except HttpResponseError as error:
            if error_code(error) == "InvalidFlushPosition":
                raise PositionConflict(path) from None
            if error_code(error) in _GONE_CODES:
                raise FileGone(path) from None
            raise
        return position + len(data)

    def read(self, path: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        stream = self._filesystem.get_file_client(path).download_file(offset=start, length=end - start)
        return bytes(stream.readall())


class AppendBlobSink:
    """Append blobs: blocks of whole lines up to 4 MiB, each conditional on the append position."""

    max_append = MAX_APPEND_BLOCK

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    def create(self, path: str, owner: str = "") -> bool:
        try:
            self._container.get_blob_client(path).create_append_blob(
                metadata={OWNER: owner} if owner else None, match_condition=MatchConditions.IfMissing
            )
        except ResourceExistsError:
            return False
        except HttpResponseError as error:
            # Azurite answers a failed If-None-Match on create with 412 rather than 409.
            if error.status_code == 412:
                return False
            raise
        return True

    def length(self, path: str) -> int | None:
        info = self.describe(path)
        return None if info is None else info.length

    def describe(self, path: str) -> FileInfo | None:
        try:
            props = self._container.get_blob_client(path).get_blob_properties()
        except ResourceNotFoundError as error:
            if error_code(error) in _GONE_CODES or not error_code(error):
                return None
            raise
        return FileInfo(int(props.size), str((props.metadata or {}).get(OWNER, "")))

    def append(self, path: str, data: bytes, position: int) -> int:
        blob = self._container.get_blob_client(path)
        for block in _blocks(data):
            try:
                blob.append_block(block, length=len(block), appendpos_condition=position)
            except HttpResponseError as error:
                if error_code(error) == "AppendPositionConditionNotMet":
                    raise PositionConflict(path) from None
                if error_code(error) in _GONE_CODES:
                    raise FileGone(path) from None
                raise
            position += len(block)
        return position

    def read(self, path: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        stream = self._container.get_blob_client(path).download_blob(offset=start, length=end - start)
        return bytes(stream.readall())

    def names(self, prefix: str) -> list[str]:
        """The blobs whose names start with `prefix` (a live file's backlog files: shared.backlog)."""
        return [blob.name for blob in self._container.list_blobs(name_starts_with=prefix)]


def _blocks(data: bytes) -> Iterator[bytes]:
    """Split at line ends into blocks of at most 4 MiB, so that every block holds whole lines."""
    start = 0
    while start < len(data):
        end = start + MAX_APPEND_BLOCK
        if end < len(data):
            end = data.rindex(b"\n", start, end) + 1
        yield data[start:end]
        start = end


def write_with_retry(write: Callable[[], T], *, deadline: float, attempts: int = 6) -> T:
    """Run an idempotent write, retrying throttled and transient failures until the deadline.

    Raises WriteFailure with the customer's cause of the last failure. Any other exception is a fault
    of the service's own: it is not retried, and propagates unchanged. The first attempt runs bare:
    nearly every write succeeds at once, and setting up the retry policy costs more than a small append.
    """
    started = time.monotonic()
    try:
        return write()
    except STORAGE_ERRORS as error:
        left = deadline - (time.monotonic() - started)
        if attempts <= 1 or left <= 0 or not _retryable(error):
            raise classify(error) from None
    try:
        for attempt in stamina.retry_context(
            on=_retryable,
            attempts=attempts - 1,
            timeout=left,
            wait_initial=0.2,
            wait_max=4.0,
        ):
            with attempt:
                return write()
    except STORAGE_ERRORS as error:
        raise classify(error) from None
    raise AssertionError("unreachable: stamina either returns or raises")


def _retryable(error: Exception) -> bool:
    if isinstance(error, PositionConflict | FileGone) or not is_storage_error(error):
        return False
    return classify(error).cause.retryable


def set_testing(testing: bool) -> None:
    """Turn retry backoff off (tests), keeping the attempts."""
    stamina.set_testing(testing, attempts=3)


__all__ = [
    "AdlsSink",
    "AppendBlobSink",
    "DestinationClients",
    "WriteFailure",
    "account_name",
    "set_testing",
    "write_with_retry",
]
