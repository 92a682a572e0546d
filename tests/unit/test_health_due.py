"""What falls due for the health check (shared.health.due) and the pure parts of a check: marks once per
minute, rows deleted only as read and only once their minute is over, the ticks of the checks an export
sat out, work items as messages."""

from __future__ import annotations

import base64
import string
from collections.abc import Iterable, Mapping
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableTransactionError
from hypothesis import given
from hypothesis import strategies as st

from shared import messages
from shared.health.check import HealthItem, Round
from shared.health.due import CLOSE_SECONDS, MINUTE, WATCH, DueIndex, DueRow, due_partition, row_key
from shared.health.records import HOUR, HealthRecord
from shared.health.rules import Tick

IDS = st.text(string.ascii_letters + string.digits + "_.-", min_size=1, max_size=63).filter(
    lambda value: value[0].isalnum()
)  # the API's id pattern
PARTITIONS = st.from_regex(r"[a-z0-9]{1,20}-[0-9]{1,2}", fullmatch=True)


class FakeTable:
    """Table calls the due index makes, in memory: upserts, transactions, deletes (with etags)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], int] = {}
        self.transactions = 0
        self.refuse_transactions = False

    def upsert_entity(self, entity: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        key = (entity["PartitionKey"], entity["RowKey"])
        self.rows[key] = self.rows.get(key, 0) + 1
        return {"etag": str(self.rows[key])}

    def submit_transaction(self, operations: Iterable[Any]) -> list[dict[str, Any]]:
        operations = list(operations)
        self.transactions += 1
        if self.refuse_transactions:
            raise TableTransactionError(message="refused")
        results: list[dict[str, Any]] = []
        for operation in operations:
            kind, entity = operation[0], operation[1]
            if str(kind).endswith("DELETE") or str(kind) == "delete":
                self.rows.pop((entity["PartitionKey"], entity["RowKey"]))
                results.append({})
            else:
                results.append(self.upsert_entity(entity))
        return results

    def delete_entity(self, partition: str, row: str, **kwargs: Any) -> None:
        if self.rows.get((partition, row)) != int(kwargs["etag"]):
            error = HttpResponseError(
                message="The update condition specified in the request was not satisfied."
            )
            error.status_code = 412
            raise error
        del self.rows[(partition, row)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@given(project=IDS, export=IDS, partition=st.one_of(st.just(""), PARTITIONS))
def test_a_row_names_its_export_and_ledger_partition(project: str, export: str, partition: str) -> None:
    """The row key reads back as the export and partition it was made of, whatever the ids."""
    row = DueRow(due_partition(0.0), row_key((project, export), partition), "1")
    assert row.key == (project, export) and row.ledger_partition == partition


def test_the_export_paths_marks_go_only_once_their_minute_is_over() -> None:
    """A mark of the export path is kept while a later save of the same minute may rely on it; other
    rows go as soon as they are judged."""
    minute = 1_000
    mark = DueRow(due_partition(minute * MINUTE + 5), row_key(("p", "e"), "hub-0"), "1")
    change = DueRow(due_partition(minute * MINUTE + 5), row_key(("p", "e")), "1")
    watch = DueRow(WATCH, row_key(("p", "e")), "1")
    end = (minute + 1) * MINUTE
    assert not mark.removable(end + CLOSE_SECONDS - 0.001)
    assert mark.removable(end + CLOSE_SECONDS)
    assert change.removable(minute * MINUTE) and watch.removable(minute * MINUTE)
    assert due_partition(0.0) > WATCH  # the watch list and the minutes are one range


def test_the_export_path_marks_an_export_once_per_minute_and_partition() -> None:
    """Every batch of a minute relies on the minute's first mark: one transaction, not one per batch."""
    table, clock = FakeTable(), Clock(600.0)
    due = DueIndex(table, clock=clock)  # type: ignore[arg-type]
    for _ in range(10):
        due.recorded("hub-0", [("p", "a"), ("p", "b")])
    due.recorded("hub-1", [("p", "a")])
    assert table.transactions == 2
    clock.now += MINUTE
    due.recorded("hub-0", [("p", "a")])
    assert table.transactions == 3
    assert (due_partition(660.0), "p|a|hub-0") in table.rows


def test_a_row_written_again_after_it_was_read_is_not_deleted() -> None:
    """Deleting is conditional on the etag read: a mark that came again stays due, and one refused row
    does not keep the others of its transaction."""
    table, clock = FakeTable(), Clock(600.0)
    due = DueIndex(table, clock=clock)  # type: ignore[arg-type]
    due.schedule(("p", "a"), 600.0)
    due.schedule(("p", "b"), 600.0)
    read = [DueRow(due_partition(600.0), row, "1") for row in ("p|a|", "p|b|")]
    due.schedule(("p", "b"), 600.0)  # changed again meanwhile
    table.refuse_transactions = True
    assert due.done(read) == 1
    assert set(table.rows) == {(due_partition(600.0), "p|b|")}


def test_a_work_item_survives_its_message() -> None:
    """The queue function reads the item the timer wrote (Base64 JSON, as the queue trigger decodes)."""
    item = HealthItem(12, 1_700_000_000.5, "p|e|", "q|f|")
    assert HealthItem.from_message(base64.b64decode(item.to_message()).decode()) == item
    assert base64.b64decode(messages.encode({"a": 1})) == b'{"a":1}'


def test_a_checks_period_is_the_time_since_the_one_before() -> None:
    assert Round(5, 160.0, ((4, 100.0), (5, 160.0))).period == 60.0
    assert Round(5, 160.0, ((3, 40.0), (5, 160.0))).period is None


CHECKS = st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3)), max_size=40)


@given(checks=CHECKS, window=st.integers(1, 8))
def test_the_ticks_of_checks_sat_out_are_the_empty_ticks_every_check_would_have_taken(
    checks: list[tuple[bool, bool, int]], window: int
) -> None:
    """Judged only when something happened, an export's ticks are those it would have if every check
    had taken a tick while it was enabled (the reference). Each check: whether anything happened to it
    (it is judged), whether it is enabled (a change makes it judged too), what it exported. A new export
    is due at its first check."""
    reference: list[Tick] = []
    record = HealthRecord("p", "e")
    enabled = True
    for seq, (active, now_enabled, exported) in enumerate(checks, start=1):
        judged = active or now_enabled != enabled or seq == 1  # created: due at its first check
        enabled = now_enabled
        tick = Tick(exported=exported if active else 0)
        if enabled:
            reference = [*reference, tick][-window:]
        if judged:
            ticks = record.ticks_at(seq, (), window)
            if enabled:
                ticks = [*ticks, tick][-window:]
            record.ticks, record.tick_seq, record.ticked_at, record.ticking = ticks, seq, float(seq), enabled
        view = record.ticks_at(seq + 1, (), window)
        assert view == reference, (seq, view, reference)


def test_a_resume_clears_the_ticks_and_later_checks_count_from_it() -> None:
    """After a customer's resume (ticks cleared between checks), the checks since it are counted by
    their start times."""
    record = HealthRecord("p", "e", ticks=[], tick_seq=0, ticked_at=1_000.0, ticking=True)
    recent = ((7, 990.0), (8, 1_050.0), (9, 1_110.0))
    assert record.ticks_at(10, recent, 5) == [Tick(), Tick()]


def test_signals_exported_in_the_last_hour_are_those_of_the_checks_of_the_last_hour() -> None:
    """The pane's "exported in the last hour": each check's count is kept for an hour, an hour-old one
    no longer counts (read at any time, as for an idle export nobody judged since), and the counts
    survive the record's round trip through its entity."""
    record = HealthRecord("p", "e")
    start = 1_000_000.0
    for minute, exported in enumerate([5, 0, 7, 11]):
        record.count_exported(start + 60 * minute, exported)
    assert record.exported_since(start + 180 - HOUR) == 23
    assert record.exported_since(start + 60 + 1) == 18
    record.count_exported(start + HOUR + 30, 2)  # the first count is now over an hour old: forgotten
    assert record.hourly[0] == (start + 120, 7)
    again = HealthRecord.from_entity({"PartitionKey": "p", "RowKey": "e", **record.to_entity()})
    assert again.hourly == record.hourly
    assert again.exported_since(start + 2 * HOUR + 60) == 0  # nothing counted in the hour before
