"""Where a signal goes: the destination file an export writes it to. Pure.

A file is chosen from the signal's Event Hub enqueued time (UTC), the time the platform took the signal
in, which is within seconds of the time it is written. It is used instead of the wall clock at write
time because it is fixed: a batch that is delivered again maps every signal to the file it went to the
first time, which is what lets the ledger guarantee exactly once.

Each file has one writer: its name carries the export id and the Event Hub partition.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from shared.model import AdlsDestination, BlobDestination, Destination, Export, Granularity

ADLS_SUFFIX = ".jsonl"
BLOB_SUFFIX = ".blob"


@dataclass(frozen=True, slots=True)
class FileTarget:
    """One file in a destination: its path within the filesystem or container, and its time bucket."""

    destination: Destination
    path: str
    bucket_start: datetime
    bucket_end: datetime

    @property
    def key(self) -> str:
        """A stable name for the ledger, distinct across destinations with the same path."""
        return ledger_key(f"{destination_id(self.destination)}/{self.path}")


def ledger_key(name: str) -> str:
    """A file's name in the ledger: a short digest of its place, so that a ledger entry stays small
    however long paths get (Blob paths carry signal names; an entity holds 1 MiB at most)."""
    return hashlib.blake2s(name.encode(), digest_size=12).hexdigest()


def destination_id(destination: Destination) -> str:
    """A short fingerprint of an account and filesystem or container (never of the key)."""
    if isinstance(destination, AdlsDestination):
        place = f"adls|{destination.account_url.rstrip('/')}|{destination.filesystem}"
    else:
        place = f"blob|{destination.account_url.rstrip('/')}|{destination.container}"
    return _fingerprint(place)


@functools.lru_cache(maxsize=4096)
def _fingerprint(place: str) -> str:
    """Computed once per place: a batch asks for it several times per destination file."""
    return hashlib.blake2s(place.encode(), digest_size=6).hexdigest()


def file_for(export: Export, signal_name: str, enqueued: datetime, partition: str) -> FileTarget:
    """The file that the export's writer for this partition appends this signal to."""
    at = enqueued.astimezone(UTC)
    return _file_in_minute(export, signal_name, at.replace(second=0, microsecond=0), partition)


@functools.lru_cache(maxsize=8192)
def _file_in_minute(export: Export, signal_name: str, at: datetime, partition: str) -> FileTarget:
    """`file_for` from the signal's minute (UTC): every bucket holds whole minutes, so the minute
    chooses the same file as the exact time. Remembered: a busy partition asks for the same few files
    in every batch."""
    destination = export.destination
    if isinstance(destination, BlobDestination):
        start = at
        path = "/".join(
            (
                export.project_id,
                blob_segment(signal_name),
                f"{start:%Y-%m-%d}",
                f"{start:%H}",
                f"{start:%Y%m%d_%H%M}_{export.export_id}_{partition}{BLOB_SUFFIX}",
            )
        )
        return FileTarget(destination, path, start, start + timedelta(minutes=1))
    if export.granularity is Granularity.DAY:
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        folder, length = f"{start:%Y/%m/%d}", timedelta(days=1)
    else:
        start = at.replace(minute=0, second=0, microsecond=0)
        folder, length = f"{start:%Y/%m/%d/%H}", timedelta(hours=1)
    name = f"{export.export_id}_{partition}{ADLS_SUFFIX}"
    path = "/".join(part for part in (destination.directory.strip("/"), folder, name) if part)
    return FileTarget(destination, path, start, start + length)


def replay_path(path: str, tag: str) -> str:
    """The name of a replay file beside a live file: never the same file as the live writer's."""
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}_replay-{tag}.{suffix}" if dot else f"{path}_replay-{tag}"


def blob_segment(name: str) -> str:
    """A signal name as one blob-name segment: no '/', no '.' or '..' segments, no control characters."""
    if name in {".", ".."}:
        return name.replace(".", "%2E")
    return quote(name, safe="-._~ !$&'()*+,;=:@")
