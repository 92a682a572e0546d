"""Replay: a resumed export's held signals written into its destination, exactly once.

Resume proves the destination takes writes (a probe write), sets the export active for live signals,
and enqueues one replay work item per backlog file, oldest first. The queue-triggered function
replays an item: it writes the backlog file's signals into a replay file beside the live file they
were meant for (same folder, so the same time bucket; never the live writer's file), then removes
what it replayed from the backlog.

Exactly once, with messages delivered more than once and crashes anywhere: the replay file's name
holds the backlog offset it starts at, it is created only if absent (ADLS Gen2: written under a
temporary name, then renamed with `If-None-Match: *`, atomic; Blob: one Put Blob with
`If-None-Match: *`), and it carries the backlog offset it ends at as metadata. A second delivery
finds the file, reads where it ended, and carries on from there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobProperties, ContainerClient
from azure.storage.queue import QueueClient

from shared import messages
from shared.backlog import BacklogBlob, HeldFile, held_file, list_backlog, parse_backlog_line
from shared.delivery import (
    FileSink,
    FileState,
    Line,
    Record,
    Same,
    deliver,
    encode,
    lines_after,
    match_in_order,
)
from shared.destinations import DestinationClients
from shared.layout import REPLAY_TAG, destination_id, replay_file
from shared.ledger import (
    FileRecord,
    Hold,
    LedgerTable,
    ReplayTurn,
    from_entity,
    partition_key,
    row_key,
    settle,
    turn_for_replay,
)
from shared.location import comparison
from shared.model import AdlsDestination, Export, ExportStatus, ReplayPlacement
from shared.outcomes import STORAGE_ERRORS, classify

log = logging.getLogger("signals_export.replay")

REPLAYED = "replayed"  # backlog blob metadata: bytes already replayed


class ExportReader(Protocol):
    """Reads one export (shared.exports.Exports)."""

    def get(self, project_id: str, export_id: str) -> tuple[Export, str]: ...


class ReplayNotes(Protocol):
    """Keeps where the last replay wrote (shared.health_check.HealthRecords)."""

    def note_replay(self, project_id: str, export_id: str, folder: str, at: float) -> None: ...


@dataclass(frozen=True)
class WorkItem:
    """One live file's held signals to replay (`blob`: one of its backlog files), and the time of the
    replay, fixed when the item is made: a replay file goes in that time's folder, so an item
    delivered twice writes the same file."""

    project_id: str
    export_id: str
    blob: str
    at: float = 0.0  # POSIX seconds

    def to_message(self) -> str:
        """The message as put on the queue: Base64 of the UTF-8 JSON, which is what the queue trigger
        decodes by default (extensions.queues.messageEncoding `base64` in host.json; the
        "Queue trigger" rows of docs/conformance.md)."""
        document = {
            "projectId": self.project_id,
            "exportId": self.export_id,
            "blob": self.blob,
            "at": self.at,
        }
        return messages.encode(document)

    @classmethod
    def from_message(cls, text: str) -> WorkItem:
        """A work item from the message body as the host hands it to the function (decoded)."""
        raw = orjson.loads(text)
        return cls(str(raw["projectId"]), str(raw["exportId"]), str(raw["blob"]), float(raw.get("at", 0.0)))


def work_items(blobs: Iterable[BacklogBlob], project_id: str, export_id: str, at: float) -> list[WorkItem]:
    """One item per live file that has held signals (its backlog files are replayed together), oldest
    first."""
    seen: set[str] = set()
    items = []
    for blob in blobs:
        file = held_file(blob.name, project_id, export_id)
        if file.prefix not in seen:
            seen.add(file.prefix)
            items.append(WorkItem(project_id, export_id, blob.name, at))
    return items


class ReplayQueue:
    """The queue of replay work items (`export-replay`) and its poison queue, seen from the service:
    what to replay, and how far a replay has come."""

    def __init__(
        self,
        *,
        queue: QueueClient,
        poison: QueueClient,
        backlog: ContainerClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._poison = poison
        self._backlog = backlog
        self._clock = clock

    def enqueue(self, export: Export) -> int:
        """After a resume: a work item per live file with held signals, oldest first; the export's
        poison messages, which this replaces, are cleared. Returns how many items were queued."""
        self._clear_poison(export)
        queued = self.tend(export)
        log.info(
            "replay enqueued",
            extra={"project_id": export.project_id, "export_id": export.export_id, "work_items": queued},
        )
        return queued

    def tend(self, export: Export) -> int:
        """Queue the backlog of an active export for replay (the health check does, while it lasts)."""
        blobs = list_backlog(self._backlog, export.project_id, export.export_id)
        items = work_items(blobs, export.project_id, export.export_id, self._clock())
        for item in items:
            self._queue.send_message(item.to_message())
        return len(items)

    def progress(self, export: Export) -> dict[str, Any]:
        """Replay progress as the health view shows it: what is left, and what is stuck in poison."""
        blobs = list_backlog(self._backlog, export.project_id, export.export_id)
        poisoned = 0
        try:
            for message in self._poison.peek_messages(max_messages=32):
                item = _item(message.content)
                poisoned += item is not None and (item.project_id, item.export_id) == export.key
        except ResourceNotFoundError:
            pass
        return {
            "itemsLeft": len(blobs),
            "bytesLeft": sum(blob.size for blob in blobs),
            "poisonedItems": poisoned,
        }

    def _clear_poison(self, export: Export) -> None:
        try:
            for message in self._poison.receive_messages(messages_per_page=32, visibility_timeout=30):
                item = _item(message.content)
                if item is not None and (item.project_id, item.export_id) == export.key:
                    self._poison.delete_message(message)
        except ResourceNotFoundError:
            pass


def _item(content: Any) -> WorkItem | None:
    try:
        return WorkItem.from_message(_text(content))
    except (ValueError, KeyError, TypeError):
        return None  # not one of ours: left alone


@dataclass
class ReplayOutcome:
    """What one work item did."""

    signals: int = 0  # signals written, to replay files or (a catch-up) to the live file
    skipped: int = 0  # held signals found in the live file: not written again
    files: int = 0
    folder: str = ""  # where the replay wrote (the last replay file's folder, or the live file's)
    done: bool = True


class ReplayFiles:
    """Replay files in customers' destinations, each created only if absent: a work item delivered
    twice, or after a crash, finds the file its first delivery wrote and carries on from where it ended.

    ADLS Gen2: written under a temporary name, then renamed with `If-None-Match: *` (atomic); Blob: one
    Put Blob with `If-None-Match: *`. Either way the file carries, as metadata, how far into each backlog
    file it covers (COVERS)."""

    def __init__(self, destinations: DestinationClients) -> None:
        self._destinations = destinations

    def create(self, export: Export, path: str, body: bytes, ends: dict[str, int]) -> dict[str, int]:
        """Create the replay file only if absent; return the backlog offsets the existing file covers."""
        meta = {COVERS: base64.b64encode(orjson.dumps(ends)).decode("ascii")}
        destination = export.destination
        if isinstance(destination, AdlsDestination):
            filesystem = self._destinations.filesystem(destination)
            temp = filesystem.get_file_client(f"{path}.tmp")
            temp.create_file()
            temp.append_data(body, offset=0, length=len(body), flush=True)
            temp.set_metadata(meta)
            try:
                temp.rename_file(
                    f"{destination.filesystem}/{path}", match_condition=MatchConditions.IfMissing
                )
            except (ResourceExistsError, ResourceModifiedError):
                temp.delete_file()
                found = filesystem.get_file_client(path).get_file_properties().metadata or {}
                return _covers(found, ends)
            return ends
        container = self._destinations.container(destination)
        try:
            container.upload_blob(path, body, metadata=meta, match_condition=MatchConditions.IfMissing)
        except ResourceExistsError:
            return _covers(container.get_blob_client(path).get_blob_properties().metadata or {}, ends)
        return ends


class Replayer:
    """Writes held signals into their destination, exactly once (see the module's docstring)."""

    def __init__(
        self,
        *,
        exports: ExportReader,
        backlog: ContainerClient,
        ledger_table: LedgerTable,
        destinations: DestinationClients,
        files: ReplayFiles,
        queue: QueueClient,
        notes: ReplayNotes,
        hub: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._notes = notes
        self._files = files
        self._exports = exports
        self._backlog = backlog
        self._ledger_table = ledger_table
        self._destinations = destinations
        self._queue = queue
        self._hub = hub
        self._clock = clock

    def replay(self, item: WorkItem) -> ReplayOutcome:
        outcome = ReplayOutcome()
        try:
            export, _ = self._exports.get(item.project_id, item.export_id)
        except LookupError:
            return outcome  # the export was deleted: its backlog is left to expire
        if export.status is not ExportStatus.ACTIVE or not export.enabled:
            return outcome  # postponed again or switched off: the next resume enqueues it again
        file = held_file(item.blob, item.project_id, item.export_id)
        ledger = partition_key(self._hub, file.partition)
        now = self._clock()
        turn, record = turn_for_replay(self._ledger_table, ledger, export.key, file.ledger_key, now)
        if turn is ReplayTurn.WAIT:
            # A live writer is appending the backlog to the file itself (a catch-up): look again later.
            outcome.done = False
            self._queue.send_message(item.to_message(), visibility_timeout=60)
            return outcome
        try:
            if turn is ReplayTurn.CATCH_UP and record is not None:
                record = self._catch_up(export, file, ledger, record, outcome)
            for _ in range(8):
                if self._pass(export, item, file, record, outcome):
                    self._note(export, outcome)
                    return outcome
        except STORAGE_ERRORS as error:
            raise classify(error) from None
        self._note(export, outcome)
        outcome.done = False
        self._queue.send_message(item.to_message(), visibility_timeout=30)
        return outcome

    def _note(self, export: Export, outcome: ReplayOutcome) -> None:
        if outcome.folder:
            self._notes.note_replay(export.project_id, export.export_id, outcome.folder, self._clock())

    def _catch_up(
        self, export: Export, file: HeldFile, ledger: str, record: FileRecord, outcome: ReplayOutcome
    ) -> FileRecord:
        """Append a held file's backlog to the file itself, at the held position (its time bucket is
        still current: readers of the live file find the signals there). Claimed in the ledger first
        (`turn_for_replay`); live again after, or held again if the destination fails."""
        held: dict[int, bytes] = {}
        for blob in self._backlog.list_blobs(name_starts_with=file.prefix):
            try:
                raw = bytes(self._backlog.get_blob_client(blob.name).download_blob().readall())
            except ResourceNotFoundError:
                continue
            for sequence, data in _lines(raw[: raw.rfind(b"\n") + 1]):
                if sequence > record.state.last_sequence:
                    held.setdefault(sequence, data)  # held twice by two owners: once
        lines = sorted(held.items())

        def authority() -> Record:
            try:
                entity = self._ledger_table.get_entity(ledger, row_key(*export.key))
            except ResourceNotFoundError:
                return None
            found = from_entity(entity).files.get(file.ledger_key)
            return found.state if found is not None else None

        try:
            state = deliver(
                self._destinations.sink(export.destination),
                file.path,
                lines,
                record.state,
                owner=export.owner(file.partition),
                authority=authority,
                same=comparison(export.location),
            )
        except Exception:
            again = replace(record, hold=Hold.HELD, since=self._clock())
            settle(self._ledger_table, ledger, export.key, file.ledger_key, again)
            raise
        if not isinstance(state, FileState):
            return record
        live = FileRecord(state, record.bucket_end, Hold.LIVE, self._clock())
        settle(self._ledger_table, ledger, export.key, file.ledger_key, live)
        outcome.signals += len(lines_after(lines, record.state))
        outcome.folder = file.path.rpartition("/")[0]
        return live

    def _pass(
        self,
        export: Export,
        item: WorkItem,
        file: HeldFile,
        record: FileRecord | None,
        outcome: ReplayOutcome,
    ) -> bool:
        """Replay what a live file's backlog files hold beyond what was replayed, as one replay file;
        True when none is left.

        Signals are known by their sequence numbers (each backlog line carries its own): a signal held
        twice (by two owners of a partition at once, holding the file at different positions) is
        written once. Signals the live file holds after all (a write that failed may have landed, a
        catch-up may have written them) are skipped (`held_landed`)."""
        blobs = [
            (blob, file_at(blob.name, item))
            for blob in self._backlog.list_blobs(name_starts_with=file.prefix, include=["metadata"])
        ]
        if not blobs:
            return True
        held = read_held(
            (blob.name, place.position, self._download(blob.name), blob.metadata or {})
            for blob, place in blobs
        )
        anchors = [place.held for _, place in blobs]
        if record is not None:
            anchors.append(record.state)  # the ledger's word, when it still has the file
        landed = held_landed(
            held.signals, anchors, self._live_reader(export, file), comparison(export.location)
        )
        keep = held.to_replay(landed)
        outcome.skipped += held.landed_pending(landed)
        ends = held.ends
        if keep:
            at = (
                None
                if export.replay_placement is ReplayPlacement.ORIGINAL
                else datetime.fromtimestamp(item.at, UTC)
            )
            path = replay_file(export, file.path, file.partition, at, _tag(file, sorted(held.starts)))
            covered = self._files.create(export, path, encode(keep), ends)
            if covered != ends:
                ends = covered  # an earlier delivery wrote this file: carry on from where it ended
            else:
                outcome.files += 1
                outcome.signals += len(keep)
            outcome.folder = path.rpartition("/")[0]
        return self._mark_replayed([blob for blob, _ in blobs], ends)

    def _download(self, name: str) -> bytes:
        return bytes(self._backlog.get_blob_client(name).download_blob().readall())

    def _live_reader(self, export: Export, file: HeldFile) -> Callable[[int, int], bytes]:
        """Reads the live file the signals were held from; nothing when it was another destination's
        (the export's destination changed since)."""
        if file.destination_id != destination_id(export.destination):
            return lambda start, end: b""
        sink = self._destinations.sink(export.destination)
        return lambda start, end: _read(sink, file.path, start, end)

    def _mark_replayed(self, blobs: Sequence[BlobProperties], ends: Mapping[str, int]) -> bool:
        """Delete the backlog files replayed to their end, mark how far the others were; True when
        every one was deleted. Conditional on the etag listed: signals added meanwhile stay."""
        finished = True
        for blob in blobs:
            end = ends.get(blob.name, 0)
            client = self._backlog.get_blob_client(blob.name)
            try:
                if end < blob.size:
                    client.set_blob_metadata(
                        {**(blob.metadata or {}), REPLAYED: str(end)},
                        etag=blob.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                    finished = False
                else:
                    client.delete_blob(etag=blob.etag, match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                finished = False  # signals were added meanwhile: the next pass replays them too
            except ResourceNotFoundError:
                pass
        return finished


COVERS = "backlogends"  # replay file metadata: how far into each backlog file it covers (Base64 JSON)


@dataclass
class Held:
    """What a live file's backlog files hold, read together: every held signal once, by sequence
    number, and what an earlier pass already replayed."""

    signals: dict[int, bytes]  # every held signal of the live file, once
    done: set[int]  # replayed by an earlier pass
    pending: dict[int, bytes]  # not replayed yet
    ends: dict[str, int]  # per backlog blob: the length of its complete lines
    starts: list[tuple[int, int]]  # per backlog blob: (position held at, offset replayed from)

    def to_replay(self, landed: set[int]) -> list[Line]:
        """The signals this pass writes, in sequence order: pending, not landed, not replayed."""
        return [
            (sequence, self.pending[sequence])
            for sequence in sorted(self.pending)
            if sequence not in landed and sequence not in self.done
        ]

    def landed_pending(self, landed: set[int]) -> int:
        return sum(1 for sequence in self.pending if sequence in landed)


def read_held(blobs: Iterable[tuple[str, int, bytes, Mapping[str, str]]]) -> Held:
    """Join a live file's backlog files (each: name, position held at, content, metadata). A torn
    last line (a crash while appending) is left for the next pass."""
    held = Held({}, set(), {}, {}, [])
    for name, position, raw, metadata in blobs:
        complete = raw[: raw.rfind(b"\n") + 1]
        start = int(metadata.get(REPLAYED, 0))
        held.ends[name] = len(complete)
        held.starts.append((position, start))
        offset = 0
        for sequence, data in _lines(complete):
            held.signals.setdefault(sequence, data)
            if offset < start:
                held.done.add(sequence)
            else:
                held.pending.setdefault(sequence, data)
            offset += len(sequence_line(sequence, data))
    return held


def _covers(metadata: Mapping[str, str], default: dict[str, int]) -> dict[str, int]:
    raw = metadata.get(COVERS)
    if not raw:
        return default
    return {str(name): int(end) for name, end in orjson.loads(base64.b64decode(raw)).items()}


def _tag(file: HeldFile, starts: list[tuple[int, int]]) -> str:
    """A replay file's id: its live file and where in its backlog files it starts. Deterministic, so a
    work item delivered twice names the same file (created only if absent)."""
    text = f"{file.prefix}|{starts}"
    return hashlib.blake2s(text.encode(), digest_size=REPLAY_TAG // 2).hexdigest()


def file_at(name: str, item: WorkItem) -> HeldFile:
    return held_file(name, item.project_id, item.export_id)


def _lines(raw: bytes) -> list[Line]:
    return [parse_backlog_line(row) for row in raw.split(b"\n")[:-1]]


def sequence_line(sequence: int, data: bytes) -> bytes:
    """A backlog line with its newline (shared.backlog.backlog_lines' format)."""
    return b"%d\t%s\n" % (sequence, data)


def held_landed(
    held: Mapping[int, bytes],
    anchors: Sequence[FileState],
    read: Callable[[int, int], bytes],
    same: Same | None = None,
) -> set[int]:
    """The held signals (by sequence number) that the live file holds after all. Pure but for `read`
    (bytes [start, end) of the live file; empty when unknown).

    Each backlog file names the state the file was held at, and the ledger's record (when it still has
    one) is a later one: up to the latest of these anchors, every signal was written to the file. After
    it, the file holds at most what a failed write or a catch-up appended there: a run of the held
    signals, in order (nothing else is appended to a held file). So the signals after the anchor are
    matched in order against the file from the anchor's position (shared.delivery.match_in_order):
    each compared with the one place it can be, whatever bytes other signals share."""
    if not held:
        return set()
    anchor = max(anchors, key=lambda state: (state.last_sequence, state.length))
    landed = {sequence for sequence in held if sequence <= anchor.last_sequence}
    after = sorted((sequence, data) for sequence, data in held.items() if sequence > anchor.last_sequence)
    if after:
        budget = sum(len(data) + 1 for _, data in after)
        region = read(anchor.length, anchor.length + budget)
        landed |= {after[index][0] for index, _ in match_in_order(region, after, same)}
    return landed


def _read(sink: FileSink, path: str, start: int, end: int) -> bytes:
    length = sink.length(path) or 0
    return sink.read(path, start, min(end, length)) if length > start else b""


def _text(content: Any) -> str:
    """The body of a message read from a queue directly (the poison queue): the host writes a failed
    message there Base64-encoded like the original, but moves a message it could not decode as it
    was (the Storage Queues extension's QueueServiceClientProvider)."""
    raw = content.decode() if isinstance(content, bytes) else str(content)
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return raw
