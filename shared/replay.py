"""Resume and replay: a fixed export writes its backlog into its destination, exactly once.

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
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.backlog import HeldFile, held_file, list_backlog, parse_backlog_line
from shared.delivery import FileState, Line, deliver, encode, lines_after, match_in_order
from shared.health import hints
from shared.layout import replay_path
from shared.ledger import (
    FileRecord,
    Hold,
    ReplayTurn,
    from_entity,
    partition_key,
    row_key,
    settle,
    turn_for_replay,
)
from shared.model import AdlsDestination, Export, ExportStatus
from shared.outcomes import WriteFailure, classify

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("signals_export.replay")

REPLAYED = "replayed"  # backlog blob metadata: bytes already replayed
BACKLOG_END = "backlogend"  # replay file metadata: the backlog offset it ends at


class ResumeRefused(Exception):
    """The destination still fails: nothing was changed."""

    def __init__(self, cause: str, message: str, hint_list: list[str]) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.hints = hint_list


@dataclass(frozen=True)
class ResumeResult:
    work_items: int


@dataclass(frozen=True)
class WorkItem:
    """One backlog file to replay."""

    project_id: str
    export_id: str
    blob: str

    def to_message(self) -> str:
        """The message as put on the queue: Base64 of the UTF-8 JSON, which is what the queue trigger
        decodes by default (extensions.queues.messageEncoding `base64` in host.json; the
        "Queue trigger" rows of docs/conformance.md)."""
        document = {"projectId": self.project_id, "exportId": self.export_id, "blob": self.blob}
        return base64.b64encode(orjson.dumps(document)).decode("ascii")

    @classmethod
    def from_message(cls, text: str) -> WorkItem:
        """A work item from the message body as the host hands it to the function (decoded)."""
        raw = orjson.loads(text)
        return cls(str(raw["projectId"]), str(raw["exportId"]), str(raw["blob"]))


def resume(runtime: Runtime, export: Export) -> ResumeResult:
    """Check the destination, set the export active, and enqueue its backlog for replay."""
    export, _ = runtime.store.get(export.project_id, export.export_id)  # its state now, not the caller's
    failure = _check(runtime, export)
    if failure is not None:
        raise ResumeRefused(
            failure.cause.value,
            f"The destination still fails ({failure}): the export stays {export.status.value}.",
            hints(failure.cause.value),
        )
    if export.status is not ExportStatus.ACTIVE:
        runtime.store.set_status(export.project_id, export.export_id, ExportStatus.ACTIVE, cause="")
        runtime.registry.invalidate()
        record = runtime.health_records.get(export.project_id, export.export_id)
        runtime.monitor.record_resume(export, record, by="customer")
    return ResumeResult(resume_replay(runtime, export))


def _check(runtime: Runtime, export: Export) -> WriteFailure | None:
    try:
        runtime.destinations.prepare(export.destination)
    except WriteFailure as failure:
        return failure
    return runtime.destinations.probe_write(export.destination)


def resume_replay(runtime: Runtime, export: Export) -> int:
    """Enqueue a work item per backlog file, oldest first; clear the export's poison messages, which
    this resume replaces. Returns how many items were enqueued."""
    _clear_poison(runtime, export)
    items = [
        WorkItem(export.project_id, export.export_id, blob.name)
        for blob in list_backlog(runtime.backlog_container, export.project_id, export.export_id)
    ]
    for item in items:
        runtime.replay_queue.send_message(item.to_message())
    log.info(
        "replay enqueued",
        extra={"project_id": export.project_id, "export_id": export.export_id, "work_items": len(items)},
    )
    return len(items)


def _clear_poison(runtime: Runtime, export: Export) -> None:
    poison = runtime.poison_queue
    try:
        for message in poison.receive_messages(messages_per_page=32, visibility_timeout=30):
            try:
                item = WorkItem.from_message(_text(message.content))
            except (ValueError, KeyError, TypeError):
                continue
            if (item.project_id, item.export_id) == export.key:
                poison.delete_message(message)
    except ResourceNotFoundError:
        pass


@dataclass
class ReplayOutcome:
    """What one work item did."""

    signals: int = 0
    skipped: int = 0
    files: int = 0
    done: bool = True


def replay(runtime: Runtime, item: WorkItem) -> ReplayOutcome:
    """Replay one backlog file. Raises WriteFailure when the destination fails (the queue retries the
    message, then moves it to the poison queue)."""
    outcome = ReplayOutcome()
    try:
        export, _ = runtime.store.get(item.project_id, item.export_id)
    except LookupError:
        return outcome  # the export was deleted: its backlog is left to expire
    if export.status is not ExportStatus.ACTIVE or not export.enabled:
        return outcome  # postponed again or switched off: the next resume enqueues it again
    held = held_file(item.blob, item.project_id, item.export_id)
    ledger = partition_key(runtime.settings.eventhub_name, held.partition)
    turn, record = turn_for_replay(runtime.ledger_table, ledger, export.key, held.ledger_key, runtime.clock())
    if turn is ReplayTurn.WAIT:
        # A live writer is appending this backlog to the file itself (a catch-up): look again later.
        outcome.done = False
        runtime.replay_queue.send_message(item.to_message(), visibility_timeout=60)
        return outcome
    if turn is ReplayTurn.CATCH_UP and record is not None:
        _catch_up(runtime, export, item, held, ledger, record, outcome)
    blob = runtime.backlog_container.get_blob_client(item.blob)
    for _ in range(8):
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return outcome  # replayed and removed already
        size, etag, metadata = int(props.size), str(props.etag), dict(props.metadata or {})
        start = int(metadata.get(REPLAYED, 0))
        if start < size:
            end = _replay_range(runtime, export, item, held, start, size, outcome)
            metadata[REPLAYED] = str(end)
            try:
                blob.set_blob_metadata(metadata, etag=etag, match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                pass  # signals were added meanwhile: the next pass finds the replay file and goes on
            continue
        try:
            blob.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            continue  # signals were added meanwhile: replay them too
        except ResourceNotFoundError:
            pass
        return outcome
    outcome.done = False
    runtime.replay_queue.send_message(item.to_message(), visibility_timeout=30)
    return outcome


def _catch_up(
    runtime: Runtime,
    export: Export,
    item: WorkItem,
    held: HeldFile,
    ledger: str,
    record: FileRecord,
    outcome: ReplayOutcome,
) -> None:
    """Append a held file's backlog to the file itself, at the held position (its time bucket is still
    current: readers of the live file find the signals there). Claimed in the ledger first; live again
    after, or held again if the destination fails (the queue retries the item)."""
    blob = runtime.backlog_container.get_blob_client(item.blob)
    raw = bytes(blob.download_blob().readall())
    lines = [parse_backlog_line(row) for row in raw[: raw.rfind(b"\n") + 1].split(b"\n")[:-1]]

    def authority() -> FileState | None:
        try:
            entity = runtime.ledger_table.get_entity(ledger, row_key(*export.key))
        except ResourceNotFoundError:
            return None
        found = from_entity(entity).files.get(held.ledger_key)
        return found.state if found is not None else None

    sink = runtime.destinations.sink(export.destination)
    try:
        state = deliver(
            sink, held.path, lines, record.state, owner=export.owner(held.partition), authority=authority
        )
    except Exception as error:
        settle(
            runtime.ledger_table,
            ledger,
            export.key,
            held.ledger_key,
            replace(record, hold=Hold.HELD, since=runtime.clock()),
        )
        if isinstance(error, WriteFailure):
            raise
        raise classify(error) from None
    if isinstance(state, FileState):
        live = FileRecord(state, record.bucket_end, Hold.LIVE, runtime.clock())
        settle(runtime.ledger_table, ledger, export.key, held.ledger_key, live)
        outcome.signals += len(lines_after(lines, record.state))


def _replay_range(
    runtime: Runtime,
    export: Export,
    item: WorkItem,
    held: HeldFile,
    start: int,
    end: int,
    outcome: ReplayOutcome,
) -> int:
    """Write backlog bytes [start, end) as one replay file; return the backlog offset it ends at.

    The signals the live file holds after all (a write that failed may have landed: shared.backlog)
    are skipped. They are found by reading the live file from the position it was held at and
    matching the backlog's signals in order against it, from the backlog's start, so that every pass
    over a growing backlog judges each signal the same way."""
    raw = bytes(
        runtime.backlog_container.get_blob_client(item.blob).download_blob(offset=0, length=end).readall()
    )
    complete = raw[: raw.rfind(b"\n") + 1]
    end = len(complete)
    lines: list[Line] = []
    offsets: list[int] = []
    offset = 0
    for row in complete.split(b"\n")[:-1]:
        lines.append(parse_backlog_line(row))
        offsets.append(offset)
        offset += len(row) + 1
    live_path, position = held.path, held.position
    try:
        landed = _landed(runtime, export, live_path, position, lines)
        keep = [line for index, line in enumerate(lines) if offsets[index] >= start and index not in landed]
        outcome.skipped += sum(1 for index in landed if offsets[index] >= start)
        if keep:
            path = replay_path(live_path, f"{position:012d}-{start:012d}")
            written_end = _create_replay_file(runtime, export, path, encode(keep), end)
            if written_end != end:
                return written_end  # an earlier delivery wrote this file for a shorter range
            outcome.files += 1
            outcome.signals += len(keep)
    except WriteFailure:
        raise
    except Exception as error:
        raise classify(error) from None
    return end


def _landed(runtime: Runtime, export: Export, live_path: str, position: int, lines: list[Line]) -> set[int]:
    """Indices of the backlog's signals that the held live file holds after `position`, matched in
    order (shared.delivery.match_in_order): only runs of the file's sequence are ever written there."""
    if not lines:
        return set()
    sink = runtime.destinations.sink(export.destination)
    length = sink.length(live_path) or 0
    if length <= position:
        return set()
    budget = sum(len(data) + 1 for _, data in lines)
    region = sink.read(live_path, position, min(length, position + budget))
    return {index for index, _ in match_in_order(region, lines)}


def _create_replay_file(runtime: Runtime, export: Export, path: str, body: bytes, backlog_end: int) -> int:
    """Create the replay file only if absent; return the backlog offset the existing file ends at."""
    meta = {BACKLOG_END: str(backlog_end)}
    destination = export.destination
    if isinstance(destination, AdlsDestination):
        filesystem = runtime.destinations.filesystem(destination)
        temp = filesystem.get_file_client(f"{path}.tmp")
        temp.create_file()
        temp.append_data(body, offset=0, length=len(body), flush=True)
        temp.set_metadata(meta)
        try:
            temp.rename_file(f"{destination.filesystem}/{path}", match_condition=MatchConditions.IfMissing)
        except (ResourceExistsError, ResourceModifiedError):
            temp.delete_file()
            found = filesystem.get_file_client(path).get_file_properties().metadata or {}
            return int(found.get(BACKLOG_END, backlog_end))
        return backlog_end
    container = runtime.destinations.container(destination)
    try:
        container.upload_blob(path, body, metadata=meta, match_condition=MatchConditions.IfMissing)
    except ResourceExistsError:
        metadata = container.get_blob_client(path).get_blob_properties().metadata or {}
        return int(metadata.get(BACKLOG_END, backlog_end))
    return backlog_end


def progress(runtime: Runtime, export: Export) -> dict[str, Any]:
    """Replay progress as the health view shows it: what is left, and what is stuck in poison."""
    blobs = list_backlog(runtime.backlog_container, export.project_id, export.export_id)
    poisoned = 0
    try:
        for message in runtime.poison_queue.peek_messages(max_messages=32):
            try:
                item = WorkItem.from_message(_text(message.content))
            except (ValueError, KeyError, TypeError):
                continue
            poisoned += (item.project_id, item.export_id) == export.key
    except ResourceNotFoundError:
        pass
    return {
        "itemsLeft": len(blobs),
        "bytesLeft": sum(blob.size for blob in blobs),
        "poisonedItems": poisoned,
    }


def _text(content: Any) -> str:
    """The body of a message read from a queue directly (the poison queue): the host writes a failed
    message there Base64-encoded like the original, but moves a message it could not decode as it
    was (the Storage Queues extension's QueueServiceClientProvider)."""
    raw = content.decode() if isinstance(content, bytes) else str(content)
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return raw
