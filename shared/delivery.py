"""Exactly once into one destination file, whatever crashed, was delivered twice, or ran twice at once.

Every append names the position it expects the file to have (ADLS Gen2 `position`, append blob
`appendpos`), so a writer whose view is stale fails instead of appending. The ledger remembers, per
file, the length written and the sequence number of the last signal in it. When an append fails on
position, the writer reads back the part it does not know and matches it line by line against the
signals it is about to write: what is already there is not written again.

Invariant kept by every `FileState` this module returns: the file's first `length` bytes hold exactly
this writer's signals up to `last_sequence`, in order.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Protocol

MAX_POSITION_CONFLICTS = 8


@dataclass(frozen=True, slots=True)
class FileState:
    """What the ledger knows of a file: bytes written, and the last signal's sequence number in them."""

    length: int
    last_sequence: int

    def join(self, other: FileState) -> FileState:
        """The later of two views of one file. Files only grow, so the longer view is the later."""
        return other if other.length > self.length else self


EMPTY = FileState(0, -1)


Line = tuple[int, bytes]
"""A line to write: the sequence number it is known by, and its bytes without the newline.

A plain tuple, not a class: the export path makes one per signal, and a tuple costs a fraction of any
class instance to build. Lines handed to delivery are in ascending sequence order."""

_SEQUENCE = itemgetter(0)
_DATA = itemgetter(1)


def lines_after(lines: Sequence[Line], state: FileState | None) -> Sequence[Line]:
    """The lines a file's recorded state does not hold yet (`lines` itself when it holds none: no copy)."""
    if state is None or not lines or lines[0][0] > state.last_sequence:
        return lines
    return lines[bisect_right(lines, state.last_sequence, key=_SEQUENCE) :]


def merged(runs: Iterable[Sequence[Line]]) -> list[Line]:
    """Runs of lines, each in sequence order, as one list in sequence order."""
    return sorted(chain.from_iterable(runs), key=_SEQUENCE)


class PositionConflict(Exception):
    """The file is not at the expected length: another writer, or an earlier attempt, got there first."""


class FileGone(Exception):
    """The file disappeared while being written (deleted by the customer)."""


class FileSink(Protocol):
    """The four file operations delivery needs. Implemented for ADLS Gen2 and append blobs."""

    def create(self, path: str) -> bool:
        """Create an empty file unless one exists; True if this call created it."""

    def length(self, path: str) -> int | None:
        """The committed length, or None when the file does not exist."""

    def append(self, path: str, data: bytes, position: int) -> int:
        """Append at `position` only if the file is that long; return the new length.

        Raises PositionConflict otherwise, and FileGone when the file does not exist.
        """

    def read(self, path: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the file."""


class ConflictsPersist(Exception):
    """The file kept moving under this writer; the batch goes to the backlog rather than spin."""


def encode(lines: Sequence[Line]) -> bytes:
    """The bytes that append these lines: each line and its newline, in one copy."""
    return b"\n".join([*map(_DATA, lines), b""])


def deliver(
    sink: FileSink,
    path: str,
    lines: Sequence[Line],
    state: FileState | None,
    encoded: Callable[[Sequence[Line]], bytes] = encode,
) -> FileState:
    """Write the lines not yet in the file, once, and return the file's new state.

    `state` is the ledger's view, or None when the ledger has no record of the file. `encoded` gives
    the payload of a list of lines (a caller writing the same lines to several files encodes once).
    """
    pending = lines_after(lines, state)
    if not pending:
        return state if state is not None else EMPTY
    if state is None:
        state, pending = _adopt(sink, path, pending)
    for _ in range(MAX_POSITION_CONFLICTS):
        if not pending:
            return state
        payload = encoded(pending)
        try:
            length = sink.append(path, payload, state.length)
        except FileGone:
            sink.create(path)
            state = FileState(0, state.last_sequence)
            continue
        except PositionConflict:
            state, pending = _catch_up(sink, path, state, pending)
            continue
        return FileState(length, pending[-1][0])
    raise ConflictsPersist(f"{path} changed under the writer {MAX_POSITION_CONFLICTS} times")


def _adopt(sink: FileSink, path: str, pending: Sequence[Line]) -> tuple[FileState, Sequence[Line]]:
    """Start on a file the ledger does not know: create it, or learn what of ours it already holds."""
    if sink.create(path):
        return EMPTY, pending
    length = sink.length(path) or 0
    if length == 0:
        return EMPTY, pending
    return reconcile(sink.read(path, 0, length), EMPTY, pending, anchored=False)


def _catch_up(
    sink: FileSink, path: str, state: FileState, pending: Sequence[Line]
) -> tuple[FileState, Sequence[Line]]:
    length = sink.length(path)
    if length is None:
        sink.create(path)
        return FileState(0, state.last_sequence), pending
    if length < state.length:
        # Shorter than written: the customer replaced the file. Its content is theirs; write after it.
        return FileState(length, state.last_sequence), pending
    return reconcile(sink.read(path, state.length, length), state, pending, anchored=True)


def reconcile(
    region: bytes, state: FileState, pending: Sequence[Line], *, anchored: bool
) -> tuple[FileState, list[Line]]:
    """Account for a region of the file that this writer did not record. Pure.

    `region` starts at `state.length`. Anchored, it must start with the first pending line (it was
    appended after the last recorded write); not anchored (the ledger had no record), our lines may
    start anywhere in it. Lines of ours found in it are not written again. Data that is not ours (a
    customer's own lines) is stepped over, never overwritten.
    """
    rows = region.split(b"\n")
    complete = rows[:-1]  # a region written by appends of whole lines ends with a newline
    start = 0 if anchored else _find(complete, pending[0][1] if pending else b"")
    matched = 0
    if start is not None:
        while (
            start + matched < len(complete)
            and matched < len(pending)
            and complete[start + matched] == pending[matched][1]
        ):
            matched += 1
    if matched == 0:
        return FileState(state.length + len(region), state.last_sequence), list(pending)
    last = pending[matched - 1][0]
    assert start is not None
    if matched == len(pending) and start + matched < len(complete):
        # Everything of ours is there and more follows: a writer ahead of us. Stop after our part.
        end = sum(len(row) + 1 for row in complete[: start + matched])
        return FileState(state.length + end, last), []
    return FileState(state.length + len(region), last), list(pending[matched:])


def _find(rows: Sequence[bytes], first: bytes) -> int | None:
    for index, row in enumerate(rows):
        if row == first:
            return index
    return None
