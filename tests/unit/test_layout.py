"""Where signals land: the documented ADLS Gen2 and Application Insights layouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.layout import blob_segment, file_for, replay_path
from shared.model import AdlsDestination, BlobDestination, Export, Granularity, Secret

KEY = Secret("a2V5")
ADLS = AdlsDestination("https://acct.dfs.core.windows.net/", "myfilesystem", "directory1/directory2/", KEY)
BLOB = BlobDestination("https://acct.blob.core.windows.net/", "exports", KEY)
AT = datetime(2026, 3, 7, 9, 41, 5, 123000, tzinfo=UTC)


def test_hourly_adls_files_are_under_path_year_month_day_hour() -> None:
    """Hourly granularity: <path>/yyyy/MM/dd/HH/<export>_<partition>.jsonl."""
    target = file_for(Export("p1", "lake", ADLS), "click", AT, "3")
    assert target.path == "directory1/directory2/2026/03/07/09/lake_3.jsonl"
    assert (target.bucket_start, target.bucket_end) == (
        AT.replace(minute=0, second=0, microsecond=0),
        AT.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1),
    )


def test_daily_adls_files_are_under_path_year_month_day() -> None:
    """Daily granularity: <path>/yyyy/MM/dd/<export>_<partition>.jsonl."""
    target = file_for(Export("p1", "lake", ADLS, granularity=Granularity.DAY), "click", AT, "0")
    assert target.path == "directory1/directory2/2026/03/07/lake_0.jsonl"


def test_a_filesystem_without_directories_puts_dates_at_its_root() -> None:
    """With only a filesystem given, the date folders start at the filesystem root."""
    root = AdlsDestination("https://acct.dfs.core.windows.net/", "fs", "", KEY)
    assert file_for(Export("p1", "e", root), "n", AT, "1").path == "2026/03/07/09/e_1.jsonl"


def test_times_are_utc_whatever_the_zone_of_the_event_time() -> None:
    """An enqueued time given in another zone lands in its UTC hour."""
    local = AT.astimezone(timezone(timedelta(hours=-5)))
    assert file_for(Export("p1", "e", ADLS), "n", local, "1").path.endswith("2026/03/07/09/e_1.jsonl")


def test_blob_layout_is_project_signal_date_hour_with_a_blob_per_minute() -> None:
    """Application Insights layout: <project>/<signal>/<yyyy-MM-dd>/<HH>/<one blob per minute>."""
    target = file_for(Export("proj", "ai", BLOB), "PageView", AT, "2")
    assert target.path == "proj/PageView/2026-03-07/09/20260307_0941_ai_2.blob"
    later = file_for(Export("proj", "ai", BLOB), "PageView", AT + timedelta(minutes=1), "2")
    assert later.path == "proj/PageView/2026-03-07/09/20260307_0942_ai_2.blob"


@pytest.mark.parametrize(
    ("name", "segment"),
    [("a/b", "a%2Fb"), ("..", "%2E%2E"), (".", "%2E"), ("x\ny", "x%0Ay"), ("Page View", "Page View")],
)
def test_signal_names_never_escape_their_blob_folder(name: str, segment: str) -> None:
    """A signal name is one path segment, whatever characters it holds."""
    assert blob_segment(name) == segment


def test_files_of_different_destinations_have_different_ledger_keys() -> None:
    """Two accounts with the same path are two files to the ledger."""
    other = AdlsDestination(
        "https://other.dfs.core.windows.net/", "myfilesystem", "directory1/directory2/", KEY
    )
    a = file_for(Export("p1", "lake", ADLS), "n", AT, "0")
    b = file_for(Export("p1", "lake", other), "n", AT, "0")
    assert a.path == b.path and a.key != b.key


def test_replay_files_sit_beside_live_files_under_another_name() -> None:
    """A replay never writes into the live writer's file."""
    assert replay_path("d/2026/03/07/09/lake_3.jsonl", "0001") == "d/2026/03/07/09/lake_3_replay-0001.jsonl"
