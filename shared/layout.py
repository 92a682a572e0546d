"""Where a signal goes: the destination file an export writes it to. Pure.

A file is chosen from the signal's Event Hub enqueued time (UTC), the time the platform took the signal
in, which is within seconds of the time it is written. It is used instead of the wall clock at write
time because it is fixed: a batch that is delivered again maps every signal to the file it went to the
first time, which is what lets the ledger guarantee exactly once.

Each file has one writer: its name carries the export id and the Event Hub partition.

Every name built here, and every name built from it (a replay file, the backlog blob that holds a
file's undelivered signals), stays within Azure's limits whatever a signal's name is: 1,024
characters per blob name or ADLS Gen2 path, no `.`/`..` segment, no segment ending in `.`, only
characters that need no special treatment (docs/conformance.md, "Storage limits"). A signal name
that cannot be a folder as it is becomes a readable prefix and a hash (`blob_segment`).
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

# Azure's limits on names (Naming and Referencing Containers, Blobs, and Metadata,
# https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata):
MAX_NAME = 1024  # characters in a blob name, or in an ADLS Gen2 path within its filesystem
MAX_DEPTH = 63 - 2  # path segments with a hierarchical namespace: 63 counting account and container
# What a name built here may take at most besides the parts a customer chooses:
MAX_ID = 63  # a project or export id (shared.api.rules.ID_PATTERN)
MAX_PARTITION = 4  # an Event Hub partition id: at most 1,024 partitions per hub (Dedicated)
NAME_SEGMENT = 255  # a signal name's folder: at most this many characters (then prefix and hash)
_HASH_CHARS = 16  # 64 bits of BLAKE2s of the name
# Names derived from a destination file's path: a replay file (`_replay-<16 hex digits>`, and `.tmp`
# while an ADLS Gen2 replay file is written), and the backlog blob in the service's own storage,
# `<project>/<export>/<partition>/<destination id>/<path>@<position>` (shared.backlog.BacklogFile).
REPLAY_TAG = 16
REPLAY_SUFFIX = len("_replay-") + REPLAY_TAG + len(".tmp")
MAX_POSITION = 16  # digits of a byte position in a file (up to 10^16 bytes: far beyond any file)
MAX_SEQUENCE = 19  # digits of an Event Hubs sequence number (a 64-bit integer)
BACKLOG_PREFIX = (
    MAX_ID + 1 + MAX_ID + 1 + MAX_PARTITION + 1 + 12 + 1 + len("@") + MAX_POSITION + len("-") + MAX_SEQUENCE
)
# The ADLS Gen2 layout adds `/yyyy/MM/dd/HH/<export id>_<partition>.jsonl` (4 folders and a file) to
# the customer's directory, which must leave room for all of the above.
_ADLS_TAIL = len("/yyyy/MM/dd/HH/") + MAX_ID + 1 + MAX_PARTITION + len(ADLS_SUFFIX)
MAX_DIRECTORY = MAX_NAME - max(BACKLOG_PREFIX, REPLAY_SUFFIX) - _ADLS_TAIL
MAX_DIRECTORY_DEPTH = MAX_DEPTH - 5


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
                blob_segment(export.project_id),  # an id ending in "." is encoded like a name
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


def replay_file(export: Export, live_path: str, partition: str, at: datetime | None, tag: str) -> str:
    """Where a replay writes the signals a live file did not get.

    With `at` (the time of the replay, fixed in its work item), in the folder of that time, as the live
    layout would place a file written then: readers that move forward through the folders find it.
    Without (`replayPlacement: original`), beside the live file, in its original time bucket."""
    if at is None:
        return replay_path(live_path, tag)
    at = at.astimezone(UTC)
    destination = export.destination
    if isinstance(destination, BlobDestination):
        project, name = live_path.split("/")[:2]  # already folder-safe (blob_segment)
        path = "/".join(
            (
                project,
                name,
                f"{at:%Y-%m-%d}",
                f"{at:%H}",
                f"{at:%Y%m%d_%H%M}_{export.export_id}_{partition}{BLOB_SUFFIX}",
            )
        )
    else:
        folder = f"{at:%Y/%m/%d}" if export.granularity is Granularity.DAY else f"{at:%Y/%m/%d/%H}"
        name = f"{export.export_id}_{partition}{ADLS_SUFFIX}"
        path = "/".join(part for part in (destination.directory.strip("/"), folder, name) if part)
    return replay_path(path, tag)


def blob_segment(name: str) -> str:
    """A signal name as one folder of a blob name, valid in any account (with or without a
    hierarchical namespace) and distinct for distinct names.

    Characters other than letters, digits and `-._~ !$&'()*+,;=:@` are percent-encoded (UTF-8), so
    `/`, `\\`, `%`, control characters and anything outside ASCII cannot reach the name as themselves;
    `.` and `..`, and a final `.`, are encoded too. An encoding longer than NAME_SEGMENT characters
    becomes the encoding of the name's first characters, `~` and a hash of the whole name.
    """
    encoded = _encoded(name)
    if len(encoded) <= NAME_SEGMENT:
        return encoded
    budget, used, kept = NAME_SEGMENT - 1 - _HASH_CHARS, 0, []
    for character in name:
        piece = _quote(character)
        if used + len(piece) > budget:
            break
        kept.append(piece)
        used += len(piece)
    digest = hashlib.blake2s(name.encode("utf-8", "surrogatepass"), digest_size=_HASH_CHARS // 2)
    return f"{''.join(kept)}~{digest.hexdigest()}"


@functools.lru_cache(maxsize=4096)
def _encoded(name: str) -> str:
    if name in {".", ".."}:
        return name.replace(".", "%2E")
    encoded = _quote(name)
    return encoded[:-1] + "%2E" if encoded.endswith(".") else encoded


def _quote(text: str) -> str:
    return quote(text, safe="-._~ !$&'()*+,;=:@", errors="surrogatepass")
