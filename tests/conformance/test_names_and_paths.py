"""Storage name rows, pure: every name the service builds stays within Azure's naming rules, whatever
a signal's name, and the API refuses an ADLS Gen2 directory that Azure would refuse."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from shared.api import rules
from shared.api.models import AdlsDestinationIn
from shared.backlog import BacklogFile
from shared.delivery import FileState
from shared.layout import (
    MAX_DIRECTORY,
    MAX_DIRECTORY_DEPTH,
    MAX_POSITION,
    MAX_SEQUENCE,
    NAME_SEGMENT,
    REPLAY_TAG,
    blob_segment,
    file_for,
    replay_file,
    replay_path,
)
from shared.model import AdlsDestination, BlobDestination, Export, Granularity, Secret
from tests.conformance import sources

AT = datetime(2026, 3, 7, 9, 41, 5, tzinfo=UTC)
KEY = Secret("a2V5")
LONGEST_ID = "i" * 63
LONGEST_PARTITION = "1023"
SEGMENT_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~ !$&'()*+,;=:@%]+")
names = st.text(min_size=1, max_size=3000) | st.text(alphabet="./\\%~ \x00\x7f€𝄞", min_size=1, max_size=400)


@given(names)
def test_a_signal_name_is_always_one_valid_folder(name: str) -> None:
    """At most NAME_SEGMENT characters, no '/', not '.' or '..', not ending in '.', only characters that
    need no special treatment; the same name always gives the same folder."""
    segment = blob_segment(name)
    assert 1 <= len(segment) <= NAME_SEGMENT
    assert SEGMENT_CHARACTERS.fullmatch(segment)
    assert segment not in {".", ".."} and not segment.endswith(".")
    assert blob_segment(name) == segment


@given(names, names)
def test_distinct_signal_names_get_distinct_folders(a: str, b: str) -> None:
    """Percent-encoding is one to one, and a shortened folder ends with a hash of the whole name."""
    if a != b:
        assert blob_segment(a) != blob_segment(b)


def test_a_name_exactly_at_the_folder_limit_is_kept_and_one_over_is_shortened() -> None:
    """NAME_SEGMENT characters stay as they are; one more and the folder is a prefix, '~' and a hash."""
    assert blob_segment("a" * NAME_SEGMENT) == "a" * NAME_SEGMENT
    over = blob_segment("a" * (NAME_SEGMENT + 1))
    assert len(over) == NAME_SEGMENT and re.fullmatch(r"a+~[0-9a-f]{16}", over)


def test_a_project_id_ending_in_a_dot_is_not_a_folder_ending_in_a_dot() -> None:
    """Ids may end in '.'; a folder ending in '.' is refused with a hierarchical namespace."""
    export = Export("proj.", "e.", BlobDestination("https://a.blob.core.windows.net", "c", KEY))
    assert file_for(export, "n", AT, "0").path == "proj%2E/n/2026-03-07/09/20260307_0941_e._0.blob"


def worst_case_names(target_export: Export, name: str) -> list[str]:
    """The live file, its replay file (beside it, or in the folder of the replay: the longer) while it is
    written, and its backlog blob held at the largest position a file can reach."""
    target = file_for(target_export, name, AT, LONGEST_PARTITION)
    held = FileState(10**MAX_POSITION - 1, 10**MAX_SEQUENCE - 2)  # the most digits either can have
    backlog = BacklogFile(target_export, target, LONGEST_PARTITION, held).path
    tag = "0" * REPLAY_TAG
    replays = [
        replay_path(target.path, tag),
        replay_file(target_export, target.path, LONGEST_PARTITION, AT, tag),
    ]
    return [target.path, max(replays, key=len) + ".tmp", backlog]


@given(names)
def test_every_blob_layout_name_fits_azure_whatever_the_signal_name(name: str) -> None:
    """The live blob, its replay file and its backlog blob stay within 1,024 characters and the
    hierarchical namespace's depth, with the longest ids and partition."""
    export = Export(LONGEST_ID, LONGEST_ID, BlobDestination("https://a.blob.core.windows.net", "c", KEY))
    live, replay, backlog = worst_case_names(export, name)
    assert max(len(live), len(replay), len(backlog)) <= sources.BLOB_NAME_MAX
    assert max(live.count("/"), replay.count("/")) + 1 <= sources.HNS_PATH_SEGMENTS_MAX - 2


def longest_directory(length: int = MAX_DIRECTORY, depth: int = MAX_DIRECTORY_DEPTH) -> str:
    """A directory of exactly `length` characters in `depth` folders."""
    size, extra = divmod(length - (depth - 1), depth)
    return "/".join("d" * (size + (i < extra)) for i in range(depth))


def test_the_longest_adls_directory_leaves_room_for_every_file_built_under_it() -> None:
    """With MAX_DIRECTORY characters and MAX_DIRECTORY_DEPTH folders (the most the API accepts), the
    hourly file, its replay file and its backlog blob fit exactly: the backlog blob is 1,024."""
    directory = longest_directory()
    assert len(directory) == MAX_DIRECTORY and directory.count("/") + 1 == MAX_DIRECTORY_DEPTH
    assert rules.adls_path(f"myfs/{directory}/") == ("myfs", directory)
    for granularity in Granularity:
        destination = AdlsDestination("https://a.dfs.core.windows.net", "myfs", directory, KEY)
        built = worst_case_names(Export(LONGEST_ID, LONGEST_ID, destination, granularity=granularity), "n")
        assert max(len(b) for b in built) <= sources.BLOB_NAME_MAX
        live, replay, _backlog = built  # the backlog is in the service's own account, without HNS
        assert all(b.count("/") + 1 + 2 <= sources.HNS_PATH_SEGMENTS_MAX for b in (live, replay))
    hourly = Export(
        LONGEST_ID, LONGEST_ID, AdlsDestination("https://a.dfs.core.windows.net", "myfs", directory, KEY)
    )
    assert len(worst_case_names(hourly, "n")[-1]) == sources.BLOB_NAME_MAX


DEEP = "/".join(f"zz{i}" for i in range(MAX_DIRECTORY_DEPTH + 1))


@pytest.mark.parametrize(
    ("path", "token"),
    [
        (f"myfs/{longest_directory(MAX_DIRECTORY + 1)}/", "dddd"),
        (f"myfs/{DEEP}", "zz1"),
        ("myfs/logs./", "logs."),
        ("myfs/a/b../c", "b.."),
        ("myfs/ok/x\ue000", "ok/x"),
        ("myfs/ok/y\x85", "ok/y"),
        ("myfs/ok/z\ufffe", "ok/z"),
    ],
)
def test_a_directory_azure_would_refuse_is_refused_with_a_message_that_does_not_quote_it(
    path: str, token: str
) -> None:
    """One character or folder over the limit, a segment ending in '.', a private-use, C1 control or
    noncharacter: 400 InvalidPath, and the message does not repeat the value."""
    with pytest.raises(ValidationError) as refused:
        AdlsDestinationIn(type="adls", uri="https://acct.dfs.core.windows.net/", path=path)
    [error] = refused.value.errors()
    assert error["type"] == "InvalidPath"
    assert token not in error["msg"]


KNOWN_MESSAGES: set[str] = set()
REFUSED = (
    "a\\b",
    "/x",
    "x/./y",
    "xyz/a./",
    "xyz/" + "s" * 256,
    "xyz/" + DEEP,
    "xyz/" + longest_directory(MAX_DIRECTORY + 1),
)
for bad in REFUSED:
    try:
        rules.adls_path(bad)
    except PydanticCustomError as known:
        KNOWN_MESSAGES.add(known.message())


@given(st.text(alphabet="ab./\\\x01\ue000 .", max_size=300).map(lambda tail: "myfs/" + tail))
def test_the_path_validator_accepts_only_paths_azure_takes_and_never_quotes_a_refused_one(value: str) -> None:
    """Property: an accepted path has a valid filesystem and a directory within every rule; a refused
    one raises InvalidPath with one of the fixed messages."""
    refused: PydanticCustomError | None = None
    try:
        filesystem, directory = rules.adls_path(value)
    except PydanticCustomError as error:
        refused = error
    if refused is not None:
        assert refused.type == "InvalidPath" and refused.message() in KNOWN_MESSAGES
        return
    assert filesystem == "myfs"
    segments = directory.split("/") if directory else []
    assert len(directory) <= MAX_DIRECTORY and len(segments) <= MAX_DIRECTORY_DEPTH
    for segment in segments:
        assert segment and segment not in {".", ".."} and not segment.endswith(".")
        assert "\\" not in segment and not re.search(r"[\x00-\x1f\ue000]", segment)
