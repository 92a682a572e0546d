"""Exactly once, checked against every interleaving hypothesis can find: a state machine over the real
export path (shared.pipeline.Exporter, shared.delivery, shared.ledger) on in-memory files and an
in-memory Table with etags (tests/memory.py).

Writers are instances of the service, each with its own caches (ledger, plans, its view of the
exports). The rules: produce signals (distinct or byte-identical bodies); a writer processes the next
batch from where it reads, cut at random, or crashes at any step of it (before or after any file or
table request lands); a writer loses the partition and gets it back later (keeping its caches), or
restarts (losing them); the selection of an export changes, and each writer sees it when its cache
expires; a destination fails for a while, definitely or with unknown outcome (the second machine).

The invariant, after every step, per export and file: every signal of a completed batch that the
export selects for sure (its name's selection never changed) is there exactly once; no signal is there
twice; a file's distinct lines are in sequence order. "There" is the live file, plus, for a held file,
the backlog signals the replay would write (those it does not find in the file from the held
position, matched in order: shared.replay's judgement).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ServiceResponseError
from hypothesis import HealthCheck, settings
from hypothesis import event as event_note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shared.backlog import HeldFile, held_file, parse_backlog_line
from shared.delivery import FileState
from shared.fanout import Fanout
from shared.ledger import PartitionLedger, from_entity
from shared.model import AdlsDestination, BlobDestination, Export, Granularity, Secret
from shared.pipeline import EventBatch, Exporter
from shared.replay import held_landed
from shared.signals import IncomingEvent
from tests.memory import Crash, MemoryDeadLetters, MemoryFiles, MemoryTable

START = datetime(2026, 11, 30, 10, 57, 0, tzinfo=UTC)
PARTITION = "0"
NAMES = ("a", "b", "c")
KEY = Secret("a2V5")
LONG = os.environ.get("EXACTLY_ONCE_LONG") == "1"
WRITERS = Fanout(2, "exactly-once-test")  # one thread set for every simulated instance
BUDGET = settings(
    max_examples=2000 if LONG else 60,
    stateful_step_count=60 if LONG else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
STEPS: Counter[str] = Counter()  # invariant checks per machine, reported by a long run


@dataclass
class Event:
    sequence: int
    name: str
    body: bytes

    def incoming(self) -> IncomingEvent:
        return IncomingEvent(self.body, self.sequence, START + timedelta(seconds=20 * self.sequence), "p")


@dataclass
class Writer:
    """One instance of the service: its exporter (and so its caches), where it reads, what it sees."""

    exporter: Exporter
    view: list[Export]
    cursor: int = 0


@dataclass
class Clock:
    now: float = START.timestamp()

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


@dataclass
class Faults:
    """Crashes and destination failures, injected into the stores' requests."""

    crash: tuple[str, str, int] | None = None  # (before/after, kind of request, which one of that kind)
    down: str | None = None  # "definite" (403: nothing landed) or "unknown" (the response was lost)
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)

    def tick(self, when: str, op: str) -> None:
        """A request of kind `op` is about to be made (`before`) or has landed (`after`)."""
        self.seen[(when, op)] += 1
        if self.crash is not None and self.crash[:2] == (when, op) and self.seen[(when, op)] == self.crash[2]:
            self.crash = None
            raise Crash


CRASHES = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["before", "after"]),
        st.sampled_from(["append", "create", "transaction", "backlog-append"]),
        st.integers(1, 3),
    ),
)


class ExactlyOnce(RuleBasedStateMachine):
    """The export path of one partition, under every fault the rules allow."""

    failures = False

    def __init__(self) -> None:
        super().__init__()
        self.files = MemoryFiles()
        self.backlog = MemoryFiles()
        self.table = MemoryTable()
        self.clock = Clock()
        self.faults = Faults()
        self.files.fault = self._destination_fault
        self.backlog.fault = lambda when, op, path: self.faults.tick(when, f"backlog-{op}")
        self.table.fault = lambda when, op: self.faults.tick(when, op)
        self.events: list[Event] = []
        self.selection = frozenset({"a", "b"})
        self.unstable: set[str] = set()  # names whose selection by `blob` changed during the run
        self.done: set[int] = set()  # signals of completed batches: handled for sure
        self.checkpoint = 0
        self.writers = [self._writer(), self._writer()]

    # -- wiring ------------------------------------------------------------------------------------

    def exports(self) -> list[Export]:
        return [
            Export(
                "p",
                "lake",
                AdlsDestination("https://l.dfs.core.windows.net", "fs", "d", KEY),
                None,
                Granularity.HOUR,
                generation="g1",
            ),
            Export(
                "p",
                "blob",
                BlobDestination("https://b.blob.core.windows.net", "c", KEY),
                self.selection,
                generation="g1",
            ),
        ]

    def _writer(self) -> Writer:
        writer = Writer(exporter=None, view=self.exports(), cursor=self.checkpoint)  # type: ignore[arg-type]
        ledger = PartitionLedger(self.table, f"hub-{PARTITION}")
        writer.exporter = Exporter(
            exports_of=lambda project: writer.view,
            ledger_for=lambda partition: ledger,
            sink_for=lambda destination: self.files,
            backlog=self.backlog,
            dead_letters=MemoryDeadLetters(),
            write_deadline=0.0,
            writers=WRITERS,
            clock=self.clock,
        )
        return writer

    def _destination_fault(self, when: str, op: str, path: str) -> None:
        self.faults.tick(when, op)
        if self.faults.down == "definite" and when == "before":
            error = HttpResponseError(message="AuthenticationFailed")
            error.status_code = 403
            error.error_code = "AuthenticationFailed"  # type: ignore[attr-defined]
            raise error
        if self.faults.down == "unknown" and op == "append" and when == "after":
            raise ServiceResponseError("the connection dropped after the request was sent")

    # -- rules ---------------------------------------------------------------------------------------

    @rule(
        name=st.sampled_from(NAMES), identical=st.sampled_from([True, True, False]), count=st.integers(1, 4)
    )
    def produce(self, name: str, identical: bool, count: int) -> None:
        """Signals arrive: byte-identical heartbeats, or distinct ones."""
        for _ in range(count):
            n = len(self.events)
            body = (
                b'{"name":"%s"}' % name.encode()
                if identical
                else b'{"name":"%s","n":%d}' % (name.encode(), n)
            )
            self.events.append(Event(n, name, body))

    @precondition(lambda self: any(w.cursor < len(self.events) for w in self.writers))
    @rule(who=st.integers(0, 1), size=st.integers(1, 8), crash=CRASHES)
    def process(self, who: int, size: int, crash: tuple[str, str, int] | None) -> None:
        """A writer exports its next batch, cut at random; or dies before or after a request lands
        (after the ledger's save: recorded, but never checkpointed)."""
        writer = self.writers[who]
        batch = self.events[writer.cursor : writer.cursor + size]
        if not batch:
            return
        self.faults.seen.clear()
        self.faults.crash = crash
        try:
            writer.exporter.export(EventBatch(PARTITION, [event.incoming() for event in batch]))
        except Crash:
            event_note("crashed")
            self._restart(who)
            return
        finally:
            self.faults.crash = None
        end = batch[-1].sequence + 1
        self.done.update(event.sequence for event in batch)
        writer.cursor = end
        self.checkpoint = end  # the last to finish checkpoints (it may go back: more redelivery)

    @rule(who=st.integers(0, 1))
    def lose_partition(self, who: int) -> None:
        """The partition moves away and comes back later, from the checkpoint; the caches stay."""
        self.writers[who].cursor = self.checkpoint

    @rule(who=st.integers(0, 1))
    def restart(self, who: int) -> None:
        """The instance restarts: no caches, reading from the checkpoint."""
        self._restart(who)

    @rule()
    def change_selection(self) -> None:
        """The customer changes which signals the Blob export takes (b or c; a always)."""
        self.selection = frozenset({"a", "c"}) if "b" in self.selection else frozenset({"a", "b"})
        self.unstable.update({"b", "c"})

    @rule(who=st.integers(0, 1))
    def refresh_view(self, who: int) -> None:
        """A writer's export cache expires: it sees the exports as they are now."""
        self.writers[who].view = self.exports()

    def _restart(self, who: int) -> None:
        self.writers[who] = self._writer()  # it reads the exports afresh, too

    # -- what must hold ------------------------------------------------------------------------------

    def landed(self) -> dict[str, list[bytes]]:
        """Each live file's lines, plus the held signals the replay would write for it: those of all
        its backlog files, once per sequence number, but for those it finds the file holds after all
        (shared.replay.held_landed, the replay's own judgement, anchored on the backlog files' names
        and the ledger's record of the file)."""
        result = {path: self.files.lines(path) for path in self.files.files}
        held: dict[str, dict[int, bytes]] = defaultdict(dict)
        anchors: dict[str, list[FileState]] = defaultdict(list)
        for name, data in self.backlog.files.items():
            place = held_file(name, "p", name.split("/", 2)[1])
            anchors[place.path].append(place.held)
            for sequence, line in (parse_backlog_line(row) for row in bytes(data).split(b"\n")[:-1]):
                held[place.path].setdefault(sequence, line)
            record = self.record_of(place)
            if record is not None:
                anchors[place.path].append(record)
        for live, by_sequence in held.items():
            data = bytes(self.files.files.get(live, b""))
            landed = held_landed(by_sequence, anchors[live], lambda start, end, data=data: data[start:end])
            result[live] = result.get(live, []) + [
                line for sequence, line in sorted(by_sequence.items()) if sequence not in landed
            ]
        return result

    def record_of(self, place: HeldFile) -> FileState | None:
        """The ledger's record of a live file, if it still has one."""
        export = "blob" if place.path.startswith("p/") else "lake"
        row = self.table.rows.get((f"hub-{PARTITION}", f"p|{export}"))
        if row is None:
            return None
        record = from_entity(self.table._entity((f"hub-{PARTITION}", f"p|{export}"))).files.get(
            place.ledger_key
        )
        return record.state if record is not None else None

    @invariant()
    def each_signal_once_in_order(self) -> None:
        STEPS[type(self).__name__] += 1
        landed = self.landed()
        bodies = {event.body: event for event in self.events}
        for path, lines in landed.items():
            export = "blob" if path.startswith("p/") else "lake"
            counts = Counter(lines)
            distinct = [bodies[line].sequence for line in self.files.lines(path) if b'"n":' in line]
            assert distinct == sorted(distinct), f"{path}: out of order"
            for line, count in counts.items():
                if b'"n":' in line:
                    assert count == 1, f"{path}: {line!r} {count} times"
        for export in ("lake", "blob"):
            found: Counter[bytes] = Counter()
            for path, lines in landed.items():
                if ("blob" if path.startswith("p/") else "lake") == export:
                    found.update(lines)
            sure = Counter(
                event.body
                for event in self.events
                if event.sequence in self.done and self._selected_for_sure(export, event.name)
            )
            possible = Counter(
                event.body for event in self.events if self._maybe_selected(export, event.name)
            )
            for body, count in sure.items():
                assert found[body] >= count, f"{export}: {body!r} {found[body]} times, {count} expected"
            for body, count in found.items():
                assert count <= possible[body], f"{export}: {body!r} {count} times, at most {possible[body]}"

    def _selected_for_sure(self, export: str, name: str) -> bool:
        """The lake export takes every signal; the Blob export `a` always, and b or c while its
        selection has not changed (after a change, writers see it at different times)."""
        return export == "lake" or name == "a" or (name in self.selection and name not in self.unstable)

    def _maybe_selected(self, export: str, name: str) -> bool:
        return export == "lake" or name == "a" or name in self.selection or name in self.unstable


class ExactlyOnceWithFailures(ExactlyOnce):
    """The same, with the destination failing for a while: files held, backlog, catch-ups."""

    @rule(kind=st.sampled_from(["definite", "unknown"]))
    def destination_down(self, kind: str) -> None:
        """The destination refuses writes (a regenerated key), or drops connections after a write."""
        self.faults.down = kind

    @rule()
    def destination_up(self) -> None:
        self.faults.down = None


ExactlyOnce.TestCase.settings = BUDGET
ExactlyOnceWithFailures.TestCase.settings = BUDGET
TestExactlyOnce = ExactlyOnce.TestCase
TestExactlyOnceWithFailures = ExactlyOnceWithFailures.TestCase


@pytest.fixture(autouse=True, scope="module")
def report_steps() -> Iterator[None]:
    """A long run says how many steps it checked (EXACTLY_ONCE_LONG=1, run with -s)."""
    yield
    if LONG:
        print(f"\nexactly-once steps checked: {dict(STEPS)}, total {sum(STEPS.values())}")


def test_two_owners_holding_a_file_at_different_positions_write_each_signal_once() -> None:
    """Found by the machine: the old owner, whose failure told it nothing of the file, held it at a
    stale position, so a signal sat in two backlog files; replayed once, by its sequence number."""
    state = ExactlyOnceWithFailures()
    state.produce(name="a", identical=True, count=2)
    state.process(who=1, size=1, crash=None)
    state.process(who=0, size=2, crash=None)
    state.produce(name="a", identical=True, count=1)
    state.destination_down(kind="definite")
    state.process(who=0, size=1, crash=None)
    state.process(who=1, size=2, crash=None)
    state.each_signal_once_in_order()


def test_a_stale_hold_keeps_the_file_held_until_its_backlog_is_written() -> None:
    """Found by the machine: a stale owner's hold was released by the other owner's longer record,
    and the file took a later signal where a held one belonged; byte-identical, the replay took the
    later one for the held one. The file now stays held until its backlog is caught up."""
    state = ExactlyOnceWithFailures()
    state.produce(name="a", identical=True, count=2)
    state.process(who=1, size=1, crash=None)
    state.process(who=0, size=2, crash=None)
    state.produce(name="a", identical=True, count=1)
    state.destination_down(kind="definite")
    state.process(who=1, size=2, crash=("before", "append", 3))
    state.destination_down(kind="unknown")
    state.lose_partition(who=0)
    state.produce(name="a", identical=True, count=1)
    state.process(who=0, size=1, crash=None)
    state.each_signal_once_in_order()


def test_held_signals_are_judged_together_from_the_latest_hold() -> None:
    """Found by the machine: a catch-up wrote one backlog file's signal at another's position, so a
    backlog file judged alone from its own position misread the file. All the file's held signals are
    judged together (shared.replay.held_landed)."""
    state = ExactlyOnceWithFailures()
    state.produce(name="a", identical=True, count=1)
    state.process(who=1, size=1, crash=None)
    state.produce(name="a", identical=True, count=1)
    state.process(who=0, size=2, crash=None)
    state.produce(name="c", identical=True, count=1)
    state.destination_down(kind="definite")
    state.process(who=1, size=2, crash=None)
    state.produce(name="a", identical=False, count=1)
    state.lose_partition(who=0)
    state.produce(name="c", identical=True, count=1)
    state.process(who=0, size=2, crash=None)
    state.destination_up()
    state.process(who=1, size=1, crash=None)
    state.each_signal_once_in_order()


def test_live_signals_between_two_holds_are_not_taken_for_held_ones() -> None:
    """Found by the machine: judged from the earliest hold, a signal written live between two holds
    was taken for a byte-identical held one. Judged from the latest hold, whose signals up to its
    sequence number were all written, it is not."""
    state = ExactlyOnceWithFailures()
    state.destination_down(kind="definite")
    state.produce(name="a", identical=True, count=1)
    state.process(who=0, size=1, crash=None)
    state.destination_down(kind="unknown")
    state.produce(name="a", identical=True, count=2)
    state.process(who=0, size=1, crash=None)
    state.destination_down(kind="definite")
    state.process(who=0, size=1, crash=None)
    state.each_signal_once_in_order()


def test_a_hold_after_a_catch_up_does_not_repeat_the_caught_up_signals() -> None:
    """Found by the machine (a distinct signal written twice)."""
    state = ExactlyOnceWithFailures()
    state.destination_down(kind="definite")
    state.produce(name="a", identical=True, count=1)
    state.process(who=0, size=1, crash=None)
    state.destination_up()
    state.produce(name="a", identical=True, count=1)
    state.process(who=0, size=1, crash=None)
    state.produce(name="a", identical=False, count=1)
    state.destination_down(kind="definite")
    state.process(who=0, size=1, crash=None)
    state.destination_down(kind="unknown")
    state.process(who=1, size=1, crash=None)
    state.destination_down(kind="definite")
    state.produce(name="a", identical=True, count=1)
    state.process(who=0, size=1, crash=None)
    state.each_signal_once_in_order()
