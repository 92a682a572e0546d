"""Append blob rows: blocks of at most 4 MiB holding whole lines, and a new blob every minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.destinations import MAX_APPEND_BLOCK, _blocks
from shared.layout import file_for
from shared.model import BlobDestination, Export, Secret
from tests.conformance import sources


def test_a_write_is_cut_into_blocks_of_at_most_4_mib_of_whole_lines() -> None:
    """Append Block takes at most 4 MiB (before x-ms-version 2022-11-02): the largest batch for one
    blob, 512 signals of 1 MiB, is cut at line ends into blocks within that."""
    line = b"x" * (1024 * 1024 - 1) + b"\n"
    data = line * 512
    blocks = list(_blocks(data))
    assert MAX_APPEND_BLOCK == sources.APPEND_BLOCK_MAX_BYTES
    assert b"".join(blocks) == data
    assert all(0 < len(block) <= sources.APPEND_BLOCK_MAX_BYTES and block.endswith(b"\n") for block in blocks)


def test_a_blob_takes_one_minute_of_one_partition() -> None:
    """Each blob holds one minute of one partition's signals of one name, so it takes at most one
    append per batch of that minute (the bound on its 50,000 blocks: docs/conformance.md)."""
    export = Export("p", "e", BlobDestination("https://a.blob.core.windows.net", "c", Secret("a2V5")))
    at = datetime(2026, 3, 7, 9, 41, 59, tzinfo=UTC)
    target = file_for(export, "n", at, "0")
    assert target.bucket_end - target.bucket_start == timedelta(minutes=1)
    assert file_for(export, "n", at + timedelta(seconds=1), "0").path != target.path
