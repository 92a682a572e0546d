"""Where signals land: the documented ADLS Gen2 and Application Insights layouts."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.layout import blob_segment, file_for, replay_file, replay_path
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


def test_folders_and_names_keep_the_hour_on_a_24_hour_clock() -> None:
    """Signals of 13:05 and of 00:05 UTC land in the folders 13 and 00 (never 01 or 12), both layouts."""
    for hour in (13, 0):
        at = AT.replace(hour=hour, minute=5)
        adls = file_for(Export("p1", "e", ADLS), "n", at, "1").path
        assert adls == f"directory1/directory2/2026/03/07/{hour:02}/e_1.jsonl"
        blob = file_for(Export("proj", "ai", BLOB), "PageView", at, "2").path
        assert blob == f"proj/PageView/2026-03-07/{hour:02}/20260307_{hour:02}05_ai_2.blob"


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


def test_an_account_url_with_or_without_its_final_slash_is_one_place_to_the_ledger() -> None:
    """The ledger knows a file by account, filesystem or container, and path: `https://acct/` and
    `https://acct` are the same account, so the same file and the same ledger record (both kinds)."""
    for kind in (ADLS, BLOB):
        bare = replace(kind, account_url=kind.account_url.rstrip("/"))
        a = file_for(Export("p1", "lake", kind), "n", AT, "0")
        b = file_for(Export("p1", "lake", bare), "n", AT, "0")
        assert bare.account_url != kind.account_url
        assert (a.path, a.key) == (b.path, b.key)


def test_a_blob_files_bucket_is_the_signals_whole_minute() -> None:
    """A blob per minute: it holds the signals from the minute's first instant to the next minute's."""
    target = file_for(Export("proj", "ai", BLOB), "PageView", AT, "2")
    start = AT.replace(second=0, microsecond=0)
    assert (target.bucket_start, target.bucket_end) == (start, start + timedelta(minutes=1))


def test_a_signal_name_holding_a_lone_surrogate_still_gets_its_own_segment() -> None:
    """JSON may escape half a UTF-16 pair (`"\\ud800"`): such a name is encoded, never an error, short
    or long, and stays distinct from its neighbours."""
    short, other = "a\ud800", "a\ud801"
    assert blob_segment(short) == "a%ED%A0%80" and blob_segment(other) != blob_segment(short)
    long, other_long = "\ud800" + "x" * 400, "\ud801" + "x" * 400
    assert blob_segment(long) != blob_segment(other_long)
    assert "/" not in blob_segment(long)


def test_replay_files_sit_beside_live_files_under_another_name() -> None:
    """A replay never writes into the live writer's file."""
    assert replay_path("d/2026/03/07/09/lake_3.jsonl", "0001") == "d/2026/03/07/09/lake_3_replay-0001.jsonl"


def test_replay_file_names_keep_every_folder_and_only_change_the_file_name() -> None:
    """The tag goes before the last extension only; a name without one gets it at its end."""
    assert replay_path("d.v2/2026/03/07/09/lake_3.jsonl", "ab") == "d.v2/2026/03/07/09/lake_3_replay-ab.jsonl"
    assert replay_path("d/2026/03/07/09/lake_3", "ab") == "d/2026/03/07/09/lake_3_replay-ab"


REPLAYED_AT = datetime(2026, 3, 9, 14, 7, 30, tzinfo=UTC)


def test_a_replay_file_goes_in_the_folder_of_the_time_of_the_replay() -> None:
    """ADLS Gen2: the directory, then the replay's hour (or day), in UTC; the live file's name, tagged."""
    live = file_for(Export("p1", "lake", ADLS), "click", AT, "3").path
    other_zone = REPLAYED_AT.astimezone(timezone(timedelta(hours=9)))
    assert (
        replay_file(Export("p1", "lake", ADLS), live, "3", other_zone, "t1")
        == "directory1/directory2/2026/03/09/14/lake_3_replay-t1.jsonl"
    )
    daily = Export("p1", "lake", ADLS, granularity=Granularity.DAY)
    assert (
        replay_file(daily, live, "3", REPLAYED_AT, "t1")
        == "directory1/directory2/2026/03/09/lake_3_replay-t1.jsonl"
    )
    root = AdlsDestination("https://acct.dfs.core.windows.net/", "fs", "/", KEY)
    assert (
        replay_file(Export("p1", "lake", root), live, "3", REPLAYED_AT, "t1")
        == "2026/03/09/14/lake_3_replay-t1.jsonl"
    )


def test_a_blob_replay_file_goes_in_the_minute_folder_of_the_replay() -> None:
    """Application Insights layout: the live file's project and signal folders, then the replay's date, hour and minute."""
    export = Export("proj", "ai", BLOB)
    live = file_for(export, "Page/View", AT, "2").path
    assert (
        replay_file(export, live, "2", REPLAYED_AT, "t1")
        == "proj/Page%2FView/2026-03-09/14/20260309_1407_ai_2_replay-t1.blob"
    )


def test_with_original_placement_a_replay_file_sits_beside_the_live_file() -> None:
    """Without a replay time (replayPlacement: original), the replay file is in the live file's own folder."""
    live = file_for(Export("p1", "lake", ADLS), "click", AT, "3").path
    assert replay_file(Export("p1", "lake", ADLS), live, "3", None, "t1") == replay_path(live, "t1")
    assert replay_path(live, "t1") == "directory1/directory2/2026/03/07/09/lake_3_replay-t1.jsonl"


def test_signals_land_in_their_utc_hour_on_a_host_whose_clock_is_in_another_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The machine's zone (TZ, here +05:45) never decides a folder: live and replay files of a signal
    at 22:50 UTC go under that UTC hour, not 04:35 the next day."""
    at = datetime(2031, 1, 2, 22, 50, 7, tzinfo=UTC)
    export = Export(
        "p1", f"tz{secrets.token_hex(4)}", ADLS
    )  # an export never placed before: targets are cached
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    try:
        live = file_for(export, "click", at, "3").path
        replay = replay_file(export, live, "3", at + timedelta(hours=1), "t1")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert live == f"directory1/directory2/2031/01/02/22/{export.export_id}_3.jsonl"
    assert replay == f"directory1/directory2/2031/01/02/23/{export.export_id}_3_replay-t1.jsonl"
