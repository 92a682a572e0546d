"""Exactly once into one destination file, whatever crashed, was delivered twice, or ran twice at once.

The protocol never decides what a file holds by searching its content (signals are exported verbatim
and many are byte-identical), and never trusts a cache it cannot check.

**The file's line sequence.** For one export, Event Hub partition and time bucket, the file's lines are
the partition's signals of that bucket that the export selects, in sequence-number order. Every writer
of the file (the partition's owner, or two owners for a while during a rebalance) appends a run of that
sequence, in order, and only by positioned appends (ADLS Gen2 `position`, append blob `appendpos`): an
append lands only if the file is exactly as long as the writer believes, and as a whole.

**States.** A `FileState(length, last_sequence)` is *consistent* when the file's first `length` bytes
hold exactly the sequence's lines up to `last_sequence` that were written to it, each once, in order
(customers' own lines may sit between them), and no later line. Every state this module returns is
consistent, and so is every state the ledger records (shared.ledger saves only such states and joins
two of them by taking the longer: files only grow). So the ledger's record is an *anchor*: after it,
the file holds only runs of the sequence that follow `last_sequence`, appended by writers that have
not recorded them yet, or foreign bytes.

**Delivering a run** (`deliver`): take the latest known anchor (the writer's cached record; on any
surprise, the ledger's authoritative record joined with it), drop the lines at or below its sequence,
and append the rest at its length. When the append fails on position, something follows the anchor:
re-read the ledger, read the region after the anchor, and match it *in order* against the lines to
write (`reconcile`): the region is a run of the same sequence, so the k-th line of ours that it holds
is found at or after the place of the (k-1)-th. Lines it holds are not written again; the rest is
appended after it. Byte-identical signals cannot confuse this: a line is only ever compared with the
one position where it can be, never searched for.

**Files the ledger does not know.** A file is created with an owner mark (the export's generation and
the partition: `owner`), in the create request itself. When a create finds the file already there and
the ledger has no record of it, the mark says whose it is: ours, then it holds only unrecorded runs of
the sequence from its start (anchor `(0, -1)`); anyone else's (a customer's file, an export deleted and
created again with the same id), then it is stepped over (anchor at its end). A file of a time bucket
the ledger has already forgotten (`Forgotten`) was written and recorded long ago: nothing is written.

The cases the argument covers, each tested in tests/unit/test_delivery.py and by the state machine in
tests/unit/test_exactly_once.py: a crash between any two steps (an unrecorded append is found after
the anchor), redelivery cut differently (runs of one sequence), two owners at once (the positioned
append lets one win; the other finds the winner's run), an owner that loses and regains a partition
(its cache is an old anchor: the ledger gives the latest), a selection changed while two owners
disagree (in-order matching skips lines the other view did not select; lines only one view selected
are written at most once), identical signals (positions, not content), a customer's lines or a
deleted file (stepped over, recreated), a forgotten bucket (nothing written).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import accumulate, chain
from operator import itemgetter
from typing import Protocol

MAX_POSITION_CONFLICTS = 8


@dataclass(frozen=True, slots=True, order=True)
class FileState:
    """A consistent view of a file: bytes written, and the last signal's sequence number in them."""

    length: int
    last_sequence: int

    def join(self, other: FileState) -> FileState:
        """The later of two consistent views of one file: files only grow, and at one length the view
        that has accounted for more signals is the later."""
        return other if (other.length, other.last_sequence) > (self.length, self.last_sequence) else self


EMPTY = FileState(0, -1)


class Forgotten(Enum):
    """The ledger forgot the file's time bucket: every signal of it was written and recorded."""

    BUCKET = "forgotten"


FORGOTTEN = Forgotten.BUCKET

Record = FileState | None | Forgotten
"""What the ledger says of a file: its state, no record, or a bucket it forgot."""

Line = tuple[int, bytes]
"""A line to write: the sequence number it is known by, and its bytes without the newline.

A plain tuple, not a class: the export path makes one per signal, and a tuple costs a fraction of any
class instance to build. Lines handed to delivery are in ascending sequence order."""

_SEQUENCE = itemgetter(0)
_DATA = itemgetter(1)

Same = Callable[[bytes, bytes], bool]
"""Whether a line found in a file is the same signal as one about to be written."""


def lines_after(lines: Sequence[Line], state: FileState | None) -> Sequence[Line]:
    """The lines a file's recorded state does not hold yet (`lines` itself when it holds none: no copy)."""
    if state is None or not lines or lines[0][0] > state.last_sequence:
        return lines
    return lines[bisect_right(lines, state.last_sequence, key=_SEQUENCE) :]


def merged(runs: Iterable[Sequence[Line]]) -> list[Line]:
    """Runs of lines, each in sequence order, as one list in sequence order."""
    return sorted(chain.from_iterable(runs), key=_SEQUENCE)


def encode(lines: Sequence[Line]) -> bytes:
    """The bytes that append these lines: each line and its newline, in one copy."""
    return b"\n".join([*map(_DATA, lines), b""])


class Payloads:
    """Payloads by the list of lines they encode, and their pieces when one is over a request's limit:
    the files of exports that take the same lines (every export of a project that selects the same
    names) get the same bytes, encoded and cut once. Used from write threads at once; at worst two
    threads encode the same list twice."""

    def __init__(self) -> None:
        self._payloads: dict[int, tuple[Sequence[Line], bytes]] = {}
        self._pieces: dict[tuple[int, int], tuple[Sequence[Line], list[tuple[int, int, int]]]] = {}

    def __call__(self, lines: Sequence[Line]) -> bytes:
        known = self._payloads.get(id(lines))
        if known is not None and known[0] is lines:
            return known[1]
        payload = encode(lines)
        self._payloads[id(lines)] = (lines, payload)  # keeps `lines` alive: its id stays its own
        return payload

    def size(self, lines: Sequence[Line]) -> int | None:
        """The payload's length, when it was encoded."""
        known = self._payloads.get(id(lines))
        return len(known[1]) if known is not None and known[0] is lines else None

    def pieces(self, lines: Sequence[Line], limit: int) -> list[tuple[int, int, int]]:
        """Where the payload is cut into runs of whole lines of at most `limit` bytes: each run's start
        and end in the payload, and its last sequence. Offsets, not copies: a writer slices one run at
        a time, so a large batch is not held twice."""
        known = self._pieces.get((id(lines), limit))
        if known is not None and known[0] is lines:
            return known[1]
        pieces = list(_chunks(lines, limit))
        self._pieces[(id(lines), limit)] = (lines, pieces)
        return pieces


class PositionConflict(Exception):
    """The file is not at the expected length: another writer, or an earlier attempt, got there first."""


class FileGone(Exception):
    """The file disappeared while being written (deleted by the customer)."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a file's properties say: its committed length and the owner mark it was created with."""

    length: int
    owner: str


class FileSink(Protocol):
    """The file operations delivery needs. Implemented for ADLS Gen2 and append blobs."""

    max_append: int
    """The most bytes one append request takes (whole lines are never split across two)."""

    def create(self, path: str, owner: str = "") -> bool:
        """Create an empty file marked with `owner`, unless one exists; True if this call created it."""

    def length(self, path: str) -> int | None:
        """The committed length, or None when the file does not exist."""

    def describe(self, path: str) -> FileInfo | None:
        """Length and owner mark, or None when the file does not exist."""

    def append(self, path: str, data: bytes, position: int) -> int:
        """Append at `position` only if the file is that long; return the new length.

        Raises PositionConflict otherwise, and FileGone when the file does not exist.
        """

    def read(self, path: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the file."""


class ConflictsPersist(Exception):
    """The file kept moving under this writer; the batch goes to the backlog rather than spin."""


@dataclass
class Progress:
    """The last consistent state a delivery reached: where its file stands when the delivery fails.

    An append that failed may still have landed, at `state.length`: a file whose write failed is held
    there (shared.backlog), and the replay looks at the file from that position."""

    state: FileState | None = None


def deliver(
    sink: FileSink,
    path: str,
    lines: Sequence[Line],
    known: FileState | None,
    *,
    owner: str = "",
    authority: Callable[[], Record] = lambda: None,
    encoded: Payloads | None = None,
    progress: Progress | None = None,
    same: Same | None = None,
) -> FileState | Forgotten:
    """Write the lines the file does not hold yet, once, and return the file's new state.

    `known` is the writer's cached record of the file (None: none). `authority` reads the ledger's
    record afresh; it is asked only when the cache cannot be trusted (a position conflict, a file that
    exists although the cache has no record). `owner` marks files this delivery creates. `encoded`
    gives the payload of a list of lines (a caller writing the same lines to several files encodes
    once). `progress` is kept up to date with the last consistent state, for the caller to hold the
    file there if the delivery raises. `same` says whether a line in the file is one of ours, for lines
    that an option may write differently on a second delivery (shared.location: the location member);
    byte equality otherwise.
    """
    progress = progress if progress is not None else Progress()
    encoded = encoded if encoded is not None else Payloads()
    progress.state = known
    if known is not None:
        state, pending = known, lines_after(lines, known)
        if not pending:
            return known
    else:
        adopted = _adopt(sink, path, lines, owner, authority, same)
        if adopted is FORGOTTEN:
            return FORGOTTEN
        state, pending = adopted
    for _ in range(MAX_POSITION_CONFLICTS):
        progress.state = state
        if not pending:
            return state
        try:
            payload = encoded(pending)
            if len(payload) <= sink.max_append:  # nearly always: one request
                return FileState(sink.append(path, payload, state.length), pending[-1][0])
            for start, end, last in encoded.pieces(pending, sink.max_append):
                length = sink.append(path, payload[start:end], state.length)
                state = FileState(length, last)
                progress.state = state
            return state
        except FileGone:
            # Deleted by the customer: what it held is theirs to lose; new signals go to a new file.
            sink.create(path, owner)
            state = FileState(0, state.last_sequence)
        except PositionConflict:
            record = authority()
            if record is FORGOTTEN:
                return FORGOTTEN
            if record is not None:
                state = state.join(record)
            state, pending = _catch_up(sink, path, state, lines_after(lines, state), owner, same)
    raise ConflictsPersist(f"the file changed under the writer {MAX_POSITION_CONFLICTS} times")


def _adopt(
    sink: FileSink,
    path: str,
    lines: Sequence[Line],
    owner: str,
    authority: Callable[[], Record],
    same: Same | None,
) -> tuple[FileState, Sequence[Line]] | Forgotten:
    """Start on a file the cache has no record of: create it, or learn where to write in it."""
    if sink.create(path, owner):
        return EMPTY, lines  # new: nothing in it
    record = authority()
    if record is FORGOTTEN:
        return FORGOTTEN
    if record is not None:
        return _catch_up(sink, path, record, lines_after(lines, record), owner, same)
    info = sink.describe(path)
    if info is None:  # deleted between the two requests
        sink.create(path, owner)
        return EMPTY, lines
    if info.owner != owner or not owner:
        # Not a file of this export and partition: step over it, never overwrite.
        return FileState(info.length, -1), lines
    return _catch_up(sink, path, EMPTY, lines, owner, same)


def _catch_up(
    sink: FileSink, path: str, state: FileState, pending: Sequence[Line], owner: str, same: Same | None
) -> tuple[FileState, Sequence[Line]]:
    """Account for what the file holds after a consistent state."""
    if not pending:
        return state, pending
    length = sink.length(path)
    if length is None:
        sink.create(path, owner)
        return FileState(0, state.last_sequence), pending
    if length < state.length:
        # Shorter than written: the customer replaced the file. Its content is theirs; write after it.
        return FileState(length, state.last_sequence), pending
    if length == state.length:
        return state, pending
    return reconcile(sink.read(path, state.length, length), state, pending, same)


def reconcile(
    region: bytes, state: FileState, pending: Sequence[Line], same: Same | None = None
) -> tuple[FileState, Sequence[Line]]:
    """Account for the region of a file that follows a consistent state. Pure.

    The region holds runs of the file's sequence after `state.last_sequence` (appended by writers that
    did not record them) and possibly foreign lines. Matched in order: each line of the region is
    looked for among the pending lines after the last one found. Lines found are not written again;
    the new state ends after the last of them when every pending line was found (a writer ahead of
    us wrote more: that part is its to record), and after the whole region otherwise, with the lines
    after the last one found still to write.
    """
    matched = match_in_order(region, pending, same)
    if not matched:
        return FileState(state.length + len(region), state.last_sequence), pending
    last_index, end = matched[-1]
    last = pending[last_index][0]
    if last_index == len(pending) - 1:
        return FileState(state.length + end, last), pending[len(pending) :]
    return FileState(state.length + len(region), last), pending[last_index + 1 :]


def match_in_order(region: bytes, lines: Sequence[Line], same: Same | None = None) -> list[tuple[int, int]]:
    """The lines a region of a file holds, matched in order. Pure.

    Returns, for each line found, its index in `lines` and the offset in the region where it ends
    (after its newline). Only complete lines count: a region written by appends of whole lines ends
    with a newline, and a partial last line is someone else's.
    """
    found: list[tuple[int, int]] = []
    next_index, offset = 0, 0
    for row in region.split(b"\n")[:-1]:
        offset += len(row) + 1
        for index in range(next_index, len(lines)):
            data = lines[index][1]
            if data == row or (same is not None and same(data, row)):
                found.append((index, offset))
                next_index = index + 1
                break
        if next_index == len(lines):
            break
    return found


def _chunks(lines: Sequence[Line], limit: int) -> Iterator[tuple[int, int, int]]:
    """The encoded lines in runs of whole lines of at most `limit` bytes (a single longer line goes
    alone): each run's start and end in the payload, and its last line's sequence number."""
    ends = list(accumulate(len(data) + 1 for _, data in lines))
    start = first = 0
    while first < len(lines):
        last = max(first, bisect_right(ends, start + limit) - 1)
        yield start, ends[last], lines[last][0]
        start, first = ends[last], last + 1
