"""The backlog: signals an export could not write, kept in the service's own storage for replay.

When a write to a live file fails (or its export is postponed), the file is *held* at the last
position known to be consistent (shared.ledger.FileRecord), and its signals go, in order, to one
append blob in the `backlog` container,
`<project>/<export>/<partition>/<destination id>/<live file path>@<position>-<sequence + 1>`: where the
live file was held, and the last signal written to it up to there. The failed write may
have landed after all; if it did, the live file holds, from that position, the first of the backlog's
signals, in the same order (the file's lines after a consistent state are runs of its sequence:
shared.delivery). Only one thing is ever appended at a held position: the backlog's signals followed by
later ones (the next live writer's catch-up). So whoever looks at the file from the position (the
catch-up, the replay) finds there a run of the backlog's signals followed by later ones, and skips the
backlog's signals it finds, matched in order: exact, however many signals are byte-identical.

Each backlog line is `<sequence number>\\t<signal line>`. Writes to the backlog go through the same
exactly-once delivery as destination files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.delivery import FileSink, FileState, Line
from shared.layout import FileTarget, destination_id, ledger_key
from shared.model import Export

LEDGER_PREFIX = "backlog:"
HELD_AT = "@"


@dataclass(frozen=True, slots=True)
class BacklogFile:
    """Where one live file's signals wait after it was held at `held`: its position and the last
    signal the file held there (everything up to it was written to the file)."""

    export: Export
    target: FileTarget
    partition: str
    held: FileState

    @property
    def path(self) -> str:
        return "/".join(
            (
                self.export.project_id,
                self.export.export_id,
                self.partition,
                destination_id(self.target.destination),
                f"{self.target.path}{HELD_AT}{self.held.length}-{self.held.last_sequence + 1}",
            )
        )

    @property
    def ledger_key(self) -> str:
        return ledger_key(LEDGER_PREFIX + self.path)

    @property
    def prefix(self) -> str:
        """What the names of every backlog file of this live file start with, wherever it was held."""
        return self.path.rpartition(HELD_AT)[0] + HELD_AT


@dataclass(frozen=True, slots=True)
class HeldFile:
    """What a backlog file's name says of the live file it holds signals for."""

    partition: str
    destination_id: str
    path: str  # the live file's path in its filesystem or container
    held: FileState  # where the live file was held, and the last signal written to it there
    base: str  # the backlog file's name without `@<position>-<sequence>`

    @property
    def position(self) -> int:
        return self.held.length

    @property
    def ledger_key(self) -> str:
        """The live file's name in the ledger (shared.layout.FileTarget.key)."""
        return ledger_key(f"{self.destination_id}/{self.path}")

    @property
    def prefix(self) -> str:
        """What the names of every backlog file of this live file start with, wherever it was held."""
        return self.base + HELD_AT


def held_file(name: str, project_id: str, export_id: str) -> HeldFile:
    """The live file a backlog blob holds signals for, from the blob's name."""
    partition, destination, rest = name[len(export_prefix(project_id, export_id)) :].split("/", 2)
    path, _, held = rest.rpartition(HELD_AT)
    position, _, after = held.partition("-")
    state = FileState(int(position), int(after or 0) - 1)
    return HeldFile(partition, destination, path, state, name.rpartition(HELD_AT)[0])


class BacklogSink(FileSink, Protocol):
    """The backlog container as the export path uses it: files, and the names under a prefix."""

    def names(self, prefix: str) -> list[str]:
        """The names of the files whose names start with `prefix`."""


def backlog_lines(lines: Sequence[Line]) -> list[Line]:
    """Signal lines as backlog lines: the sequence number travels with each signal."""
    return [(sequence, b"%d\t%s" % (sequence, data)) for sequence, data in lines]


def parse_backlog_line(row: bytes) -> Line:
    """One backlog line back into the signal line and its sequence number."""
    sequence, _, data = row.partition(b"\t")
    return int(sequence), data


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
