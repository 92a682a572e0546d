"""How signals are sent: the two destination kinds behind one FileSink, and the one retry policy.

The Azure SDKs' own retries are switched off (`retry_total=0`) so that there is exactly one retry
layer: `write_with_retry`, which retries only throttling and transient failures, within a deadline.
Retrying is safe because delivery is idempotent (see shared.delivery).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import stamina
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.filedatalake import DataLakeServiceClient, FileSystemClient

from shared.delivery import FileGone, FileInfo, FileSink, PositionConflict
from shared.identity import EntraCredentials
from shared.model import AdlsDestination, BlobDestination, Destination, EntraId, SasToken, account_name
from shared.onboarding import EntraNotConfigured, claimed_projects
from shared.outcomes import STORAGE_ERRORS, Cause, WriteFailure, classify, error_code, is_storage_error

T = TypeVar("T")

MAX_APPEND_BLOCK = 4 * 1024 * 1024  # an append blob block (Append Block, x-ms-version 2019-12-12+)
MAX_ADLS_APPEND = 4000 * 1024 * 1024  # one ADLS Gen2 append request (Path - Update, action=append)
OWNER = "signalsexport"  # metadata: the owner mark a file was created with (shared.delivery)
_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 20}
_GONE_CODES = {"PathNotFound", "BlobNotFound"}
PROBE_FILE = ".signals-export-probe"  # each check writes its own: PROBE_FILE-<random hex>
# A SAS refused (AuthenticationFailed) this close to its expiry, by the service's clock, is taken for an
# expired one: the account's clock may be ahead (Azure allows requests' clocks 15 minutes of skew).
SAS_CLOCK_SKEW = 15 * 60.0


_SIGNATURE = re.compile(r"(?i)([?&]sig=)[^&\s'\"]+")


class _RedactSignatures(logging.Filter):
    """A SAS travels in each request's URL, and urllib3 logs URLs at DEBUG: the signature is replaced
    before any handler sees the record (the SDKs' own logging policies redact it already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SIGNATURE.sub(r"\1REDACTED", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _SIGNATURE.sub(r"\1REDACTED", record.msg)
        return True


def redact_signatures_in_logs() -> None:
    """Install the filter on urllib3's connection logger, once per process."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactSignatures) for f in logger.filters):
        logger.addFilter(_RedactSignatures())


class DestinationClients:
    """SDK clients for customers' destinations, created once per process and reused across batches.

    A client authenticates as its destination says: the account's shared key, the SAS (the SDK adds it
    to every request), or a Microsoft Entra ID token of the customer's tenant (`EntraCredentials`: one
    credential per tenant, shared by every client of it). A SAS destination's writes stop at its
    expiry: past it they fail as `credential-expired` without asking the account."""

    def __init__(
        self,
        client_options: dict[str, Any] | None = None,
        *,
        entra: EntraCredentials | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._options = {**_CLIENT_OPTIONS, **(client_options or {})}
        redact_signatures_in_logs()
        self._entra = entra
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[Destination, FileSystemClient | ContainerClient] = {}

    def sink(self, destination: Destination) -> FileSink:
        sink: FileSink
        if isinstance(destination, AdlsDestination):
            sink = AdlsSink(self.filesystem(destination))
        else:
            sink = AppendBlobSink(self.container(destination))
        if isinstance(destination.credential, SasToken):
            return SasSink(sink, destination.credential.expires_at, self._clock)
        return sink

    def filesystem(self, destination: AdlsDestination) -> FileSystemClient:
        return cast(FileSystemClient, self._client(destination))

    def container(self, destination: BlobDestination) -> ContainerClient:
        return cast(ContainerClient, self._client(destination))

    def _client(self, destination: Destination) -> FileSystemClient | ContainerClient:
        with self._lock:
            client = self._clients.get(destination)
            if client is None:
                credential = self._credential(destination)
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

    def _credential(self, destination: Destination) -> Any:
        """What the SDK authenticates with. Raises WriteFailure when Entra ID cannot be used: the
        service is not set up for it, or the account's URL is not https (the SDKs send tokens over
        https only; the API refuses such a destination before it is stored)."""
        credential = destination.credential
        if isinstance(credential, SasToken):
            return credential.token.value
        if isinstance(credential, EntraId):
            if not destination.account_url.startswith("https://"):
                raise WriteFailure(Cause.REJECTED, "HttpsRequired")
            if self._entra is None:
                raise WriteFailure(Cause.AUTHENTICATION, "EntraIdNotConfigured")
            try:
                return self._entra.for_tenant(credential.tenant_id)
            except EntraNotConfigured:
                raise WriteFailure(Cause.AUTHENTICATION, "EntraIdNotConfigured") from None
        return {"account_name": destination.account, "account_key": credential.value}

    def _expired(self, destination: Destination) -> WriteFailure | None:
        credential = destination.credential
        if isinstance(credential, SasToken) and self._clock() >= credential.expires_at:
            return sas_expired()
        return None

    def _classify(self, destination: Destination, error: BaseException) -> WriteFailure:
        """`classify`, knowing the destination: a SAS refused near its expiry expired."""
        failure = classify(error)
        credential = destination.credential
        if isinstance(credential, SasToken) and _expiry_refusal(
            failure, credential.expires_at, self._clock()
        ):
            return sas_expired()
        return failure

    def prepare(self, destination: Destination) -> None:
        """Create the filesystem or container if missing. Done when an export is created or resumed,
        never by live writes: a filesystem deleted later postpones the export instead of being
        silently recreated. A SAS covers one filesystem or container and cannot create it: with a SAS,
        it must exist (not-found otherwise)."""
        expired = self._expired(destination)
        if expired is not None:
            raise expired
        try:
            if isinstance(destination.credential, SasToken):
                self._properties(destination)
            elif isinstance(destination, AdlsDestination):
                self.filesystem(destination).create_file_system()
            else:
                self.container(destination).create_container()
        except ResourceExistsError:
            pass
        except STORAGE_ERRORS as error:
            raise self._classify(destination, error) from None

    def probe(self, destination: Destination) -> WriteFailure | None:
        """A cheap read of the filesystem's or container's properties: None when it answers."""
        expired = self._expired(destination)
        if expired is not None:
            return expired
        try:
            self._properties(destination)
        except STORAGE_ERRORS as error:
            return self._classify(destination, error)
        return None

    def _properties(self, destination: Destination) -> None:
        if isinstance(destination.credential, SasToken):
            # A container SAS cannot read the container's own properties (Azure answers 403
            # AuthorizationFailure): a file's are read instead, and a missing file answers as well.
            self.sink(destination).describe(PROBE_FILE)
        elif isinstance(destination, AdlsDestination):
            self.filesystem(destination).get_file_system_properties()
        else:
            self.container(destination).get_container_properties()

    def claims(self, destination: Destination) -> frozenset[str]:
        """The projects the filesystem's or container's metadata claims it for (shared.onboarding.CLAIM):
        whose storage it is, for Microsoft Entra ID destinations. A read only: nothing is created.
        Raises WriteFailure."""
        try:
            if isinstance(destination, AdlsDestination):
                metadata = self.filesystem(destination).get_file_system_properties().metadata
            else:
                metadata = self.container(destination).get_container_properties().metadata
        except STORAGE_ERRORS as error:
            raise self._classify(destination, error) from None
        return claimed_projects(metadata)

    def probe_write(self, destination: Destination) -> WriteFailure | None:
        """Prove that the service can write: create, append to and delete a small probe file. Used when
        an export is created, its key changes, or it is resumed.

        Each check writes a file of its own (a random name), so checks of several exports on one
        filesystem or container at once never meet. A probe left by a failed check is deleted too,
        as far as the storage still lets us."""
        path = f"{PROBE_FILE}-{secrets.token_hex(8)}"
        try:
            sink = self.sink(destination)
            sink.create(path)
            sink.append(path, b"\n", 0)
            self._delete(destination, path)
        except STORAGE_ERRORS as error:
            self._clean_up(destination, path)
            return self._classify(destination, error)
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
        return _length(self.describe(path))

    def describe(self, path: str) -> FileInfo | None:
        return _described(self._filesystem.get_file_client(path).get_file_properties)

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


def _described(properties: Callable[[], Any]) -> FileInfo | None:
    """A file's or blob's length and owner mark from its properties; None when it is not there (its
    container included: a missing container is a missing file to delivery)."""
    try:
        props = properties()
    except ResourceNotFoundError as error:
        if error_code(error) in _GONE_CODES or not error_code(error):
            return None
        raise
    return FileInfo(int(props.size), str((props.metadata or {}).get(OWNER, "")))


def _length(info: FileInfo | None) -> int | None:
    return None if info is None else info.length


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
        return _length(self.describe(path))

    def describe(self, path: str) -> FileInfo | None:
        return _described(self._container.get_blob_client(path).get_blob_properties)

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


class SasSink:
    """The sink of a SAS destination: past the SAS's expiry, every operation fails as
    `credential-expired` before any request (the service knows the expiry; the account's refusal says
    only AuthenticationFailed, and over the Data Lake endpoint not even why), and a refusal near it is
    read as the expiry too (the account's clock may be ahead of the service's)."""

    def __init__(self, inner: FileSink, expires_at: float, clock: Callable[[], float]) -> None:
        self._inner = inner
        self._expires_at = expires_at
        self._clock = clock
        self.max_append = inner.max_append

    def _call(self, operation: Callable[..., T], *args: Any) -> T:
        if self._clock() >= self._expires_at:
            raise sas_expired()
        try:
            return operation(*args)
        except HttpResponseError as error:
            if _expiry_refusal(classify(error), self._expires_at, self._clock()):
                raise sas_expired() from None
            raise

    def create(self, path: str, owner: str = "") -> bool:
        return self._call(self._inner.create, path, owner)

    def length(self, path: str) -> int | None:
        return self._call(self._inner.length, path)

    def describe(self, path: str) -> FileInfo | None:
        return self._call(self._inner.describe, path)

    def append(self, path: str, data: bytes, position: int) -> int:
        return self._call(self._inner.append, path, data, position)

    def read(self, path: str, start: int, end: int) -> bytes:
        return self._call(self._inner.read, path, start, end)


def _expiry_refusal(failure: WriteFailure, expires_at: float, now: float) -> bool:
    return failure.code == "AuthenticationFailed" and now >= expires_at - SAS_CLOCK_SKEW


def sas_expired() -> WriteFailure:
    return WriteFailure(Cause.CREDENTIAL_EXPIRED, "SasExpired")


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
    "SasSink",
    "WriteFailure",
    "account_name",
    "set_testing",
    "write_with_retry",
]
