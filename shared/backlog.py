"""The backlog: signals an export could not write, kept in the service's own storage for replay.

One append blob per live destination file that could not be written, in the `backlog` container:
`<project>/<export>/<destination id>/<live file path>`, so a replay knows the file (and so the time
bucket) each signal belonged to. Each line is `<sequence number>\\t<signal line>`: the sequence number
lets a replay skip signals that a write of uncertain outcome did land after all.

Writes to the backlog go through the same exactly-once delivery as destination files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.delivery import FileSink, FileState, Line, deliver
from shared.layout import FileTarget, destination_id
from shared.model import Export

LEDGER_PREFIX = "backlog:"
UNCERTAIN = "uncertain"  # metadata: live-file positions where a write of unknown outcome was aimed


@dataclass(frozen=True, slots=True)
class BacklogFile:
    """Where one live file's undelivered signals wait."""

    export: Export
    target: FileTarget

    @property
    def path(self) -> str:
        return "/".join(
            (
                self.export.project_id,
                self.export.export_id,
                destination_id(self.target.destination),
                self.target.path,
            )
        )

    @property
    def ledger_key(self) -> str:
        return LEDGER_PREFIX + self.path


def backlog_lines(lines: Sequence[Line]) -> list[Line]:
    """Signal lines as backlog lines: the sequence number travels with each signal."""
    return [(sequence, b"%d\t%s" % (sequence, data)) for sequence, data in lines]


def parse_backlog_line(row: bytes) -> Line:
    """One backlog line back into the signal line and its sequence number."""
    sequence, _, data = row.partition(b"\t")
    return int(sequence), data


def keep(sink: FileSink, file: BacklogFile, lines: Sequence[Line], state: FileState | None) -> FileState:
    """Append signals to the backlog, exactly once."""
    return deliver(sink, file.path, backlog_lines(lines), state)


@dataclass(frozen=True, slots=True)
class BacklogBlob:
    """A backlog file as listed: its name, size and times."""

    name: str
    size: int
    created: float
    modified: float
    etag: str


def export_prefix(project_id: str, export_id: str) -> str:
    return f"{project_id}/{export_id}/"


def list_backlog(container: ContainerClient, project_id: str, export_id: str) -> list[BacklogBlob]:
    """The export's backlog files, oldest first."""
    blobs = [
        BacklogBlob(
            blob.name,
            int(blob.size),
            (blob.creation_time or blob.last_modified).timestamp(),
            blob.last_modified.timestamp(),
            str(blob.etag),
        )
        for blob in container.list_blobs(name_starts_with=export_prefix(project_id, export_id))
    ]
    return sorted(blobs, key=lambda b: b.created)


def expire(container: ContainerClient, blob: BacklogBlob) -> int | None:
    """Delete a backlog file past retention; return how many signals it held (None if it changed
    meanwhile: a signal was just added, so it is not expired this time)."""
    client = container.get_blob_client(blob.name)
    try:
        data = client.download_blob(etag=blob.etag, match_condition=MatchConditions.IfNotModified).readall()
        client.delete_blob(etag=blob.etag, match_condition=MatchConditions.IfNotModified)
    except ResourceModifiedError:
        return None
    except ResourceNotFoundError:
        return 0
    return data.count(b"\n")


def mark_uncertain(container: ContainerClient, name: str, position: int) -> None:
    """Note on a backlog file that a live write aimed at `position` of its live file may have landed:
    the replay reads the live file there before writing (shared.replay.landed_at)."""
    blob = container.get_blob_client(name)
    metadata = dict(blob.get_blob_properties().metadata or {})
    positions = set(metadata.get(UNCERTAIN, "").split()) | {str(position)}
    metadata[UNCERTAIN] = " ".join(sorted(positions, key=int))
    blob.set_blob_metadata(metadata)
