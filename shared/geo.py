"""The operator's location database: a MaxMind DB file (GeoLite2 City, GeoIP2 City, or any database in
that format with the same fields), opened once per instance and opened again when the operator
replaces it.

The file is named by a setting: a path on the instance (LOCATION_DATABASE_PATH), or a blob in the
service's own storage (LOCATION_DATABASE_BLOB), downloaded to a temporary file. Whether it changed is
checked at most every LOCATION_DATABASE_CHECK_SECONDS (the file's modification time, size and inode;
the blob's ETag). A new version is opened beside the old one, which serves until the new one is ready.
An old reader is never closed, only let go: maxminddb's readers are safe for concurrent reads, but
"calling close() while reads are in progress may cause exceptions in those threads" (maxminddb 3.2.0,
README, Thread Safety).

The `maxminddb` reader uses its C extension when the installed wheel has one (`extension`), and its
pure-Python reader otherwise; both read the same files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

import maxminddb
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient

from shared.location import Locator, Lookup
from shared.settings import LOCATION_BLOB, LOCATION_PATH, Settings

log = logging.getLogger("signals_export.geo")

RETRY_SECONDS = 30.0  # after a failed load: soon, but not on every batch


class SourceUnavailable(Exception):
    """The database cannot be read now: missing, unreadable, or its storage does not answer."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A version of the database as a local file, ready to open."""

    path: str
    version: Hashable
    temporary: bool  # a download of ours, removed once opened


class DatabaseSource(Protocol):
    """Where the database comes from."""

    where: str  # for logs and errors: which setting names it, and what

    def version(self) -> Hashable:
        """What identifies the current version (raises SourceUnavailable)."""

    def fetch(self) -> Fetched:
        """The current version as a local file (raises SourceUnavailable)."""


class FileSource:
    """A file on the instance. Replace it atomically (write beside it, then rename over it): the
    reader maps the file, and a file rewritten in place under it would be read half old, half new."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.where = f"{LOCATION_PATH} ({path})"

    def version(self) -> Hashable:
        try:
            status = os.stat(self.path)
        except OSError as error:
            raise SourceUnavailable(f"{self.where}: {error.strerror}") from None
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def fetch(self) -> Fetched:
        # The version first: if the file is replaced between the two, the next check opens it again.
        return Fetched(self.path, self.version(), temporary=False)


class BlobSource:
    """A blob in the service's storage, read with the app's identity (infra/README.md says how the
    operator uploads it), downloaded to a temporary file."""

    def __init__(self, blob: BlobClient, directory: str | None = None) -> None:
        self._blob = blob
        self._directory = directory
        self.where = f"{LOCATION_BLOB} ({blob.container_name}/{blob.blob_name})"

    def version(self) -> Hashable:
        try:
            return str(self._blob.get_blob_properties().etag)
        except ResourceNotFoundError:
            raise SourceUnavailable(f"{self.where}: no such blob") from None
        except AzureError as error:
            raise SourceUnavailable(f"{self.where}: {type(error).__name__}") from None

    def fetch(self) -> Fetched:
        handle, path = tempfile.mkstemp(
            prefix="signals-export-location-", suffix=".mmdb", dir=self._directory
        )
        try:
            with os.fdopen(handle, "wb") as file:
                download = self._blob.download_blob()
                download.readinto(file)
        except ResourceNotFoundError:
            _remove(path)
            raise SourceUnavailable(f"{self.where}: no such blob") from None
        except (AzureError, OSError) as error:
            _remove(path)
            raise SourceUnavailable(f"{self.where}: {type(error).__name__}") from None
        # The ETag of the bytes downloaded, so a replacement during the download is seen next time.
        return Fetched(path, str(download.properties.etag), temporary=True)


@dataclass(frozen=True, slots=True)
class _Loaded:
    version: Hashable
    reader: maxminddb.Reader
    locator: Locator


Opener = Callable[[str], maxminddb.Reader]


class GeoDatabase:
    """The current version of the database, as a Locator. Thread-safe.

    The first load blocks its callers (no signal goes out without its location because the database
    was still loading); later checks run in one caller while the others go on with the version they
    have."""

    def __init__(
        self,
        source: DatabaseSource,
        *,
        check_every: float = 300.0,
        retry_every: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        open_reader: Opener = maxminddb.open_database,
    ) -> None:
        self._source = source
        self._check_every = check_every
        self._retry_every = min(retry_every, check_every)
        self._clock = clock
        self._open = open_reader
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._due = float("-inf")  # when to check for a new version
        self._unavailable = Locator(None)

    def locator(self) -> Locator:
        """The locator of the current version (checked for a new one when due). While no version could
        be loaded, a locator without a database: addresses are still anonymised, none is located."""
        loaded = self._loaded
        if loaded is not None and self._clock() < self._due:
            return loaded.locator
        if loaded is None:
            with self._lock:
                if self._loaded is None and self._clock() >= self._due:
                    self._refresh()
        elif self._lock.acquire(blocking=False):
            try:
                if self._clock() >= self._due:
                    self._refresh()
            finally:
                self._lock.release()
        loaded = self._loaded
        return loaded.locator if loaded is not None else self._unavailable

    @property
    def extension(self) -> bool | None:
        """Whether the loaded reader is maxminddb's C extension (None: nothing loaded)."""
        loaded = self._loaded
        return None if loaded is None else type(loaded.reader).__module__ == "maxminddb.extension"

    def _refresh(self) -> None:
        """Open the source's current version if it is not the one loaded. Called under the lock."""
        now = self._clock()
        current = self._loaded
        try:
            version = self._source.version()
            if current is not None and version == current.version:
                self._due = now + self._check_every
                return
            fetched = self._source.fetch()
            try:
                reader = self._open(fetched.path)
            finally:
                if fetched.temporary:
                    _remove(fetched.path)  # the reader has it mapped or open: the name is not needed
        except SourceUnavailable as error:
            self._failed(now, str(error))
            return
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as error:
            self._failed(now, f"{self._source.where}: not a MaxMind DB file ({type(error).__name__})")
            return
        self._loaded = _Loaded(fetched.version, reader, Locator(_lookup(reader, self._source.where)))
        self._due = now + self._check_every
        metadata = reader.metadata()
        log.info(
            "location database loaded" if current is None else "location database replaced",
            extra={
                "source": self._source.where,
                "database_type": metadata.database_type,
                "build_epoch": metadata.build_epoch,
                "extension": self.extension,
            },
        )

    def _failed(self, now: float, reason: str) -> None:
        """Keep the version loaded, if any, and try again soon."""
        self._due = now + self._retry_every
        kept = "the loaded version stays in use" if self._loaded is not None else "signals are not located"
        log.warning("location database not loaded: %s; %s", reason, kept, extra={"reason": reason})


def _lookup(reader: maxminddb.Reader, where: str) -> Lookup:
    """The reader's lookup, a corrupt record read as unknown (and reported once)."""
    get = reader.get
    reported = False

    def lookup(address: str) -> object:
        nonlocal reported
        try:
            return get(address)
        except maxminddb.InvalidDatabaseError:
            if not reported:
                reported = True
                log.warning("location database has a corrupt record: %s", where, extra={"source": where})
            return None

    return lookup


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def location_database(settings: Settings, blobs: Callable[[], BlobServiceClient]) -> GeoDatabase | None:
    """The composition root's factory: the database the settings name, or None when they name none
    (then the API refuses the location option). `blobs` gives the service's own Blob client."""
    if settings.location_database_path:
        source: DatabaseSource = FileSource(settings.location_database_path)
    elif settings.location_database_blob:
        container, _, name = settings.location_database_blob.partition("/")
        source = BlobSource(blobs().get_blob_client(container, name.strip("/")))
    else:
        return None
    return GeoDatabase(source, check_every=settings.location_check_seconds)
