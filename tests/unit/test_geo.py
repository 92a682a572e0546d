"""The operator's location database on a file: opened once, opened again when replaced (checked at most
every N seconds), kept when the replacement is broken, shared safely between threads, and read by
maxminddb's C extension or its pure-Python reader alike."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from azure.storage.blob import BlobServiceClient

from shared.geo import BlobSource, Fetched, FileSource, GeoDatabase, SourceUnavailable, location_database
from shared.location import Outcome, enrich
from shared.model import LocationOption
from shared.settings import Settings
from tests.geodata import CITY_DATABASE, FULL_V4, LOCATIONS, RENAMED_DATABASE, Clock, write_database

CLIENT = b'{"clientIp":"81.2.69.160"}'
OPTION = LocationOption("/clientIp", anonymize=False)


def city_of(database: GeoDatabase, line: bytes = CLIENT) -> str | None:
    enriched, outcome = enrich(line, OPTION, database.locator())
    if outcome is not Outcome.LOCATED:
        return None
    return str(json.loads(enriched)["location"].get("city"))


def pure(path: str) -> maxminddb.Reader:
    return maxminddb.open_database(path, maxminddb.MODE_MMAP)


def test_a_file_database_is_opened_once_and_locates(tmp_path: Path) -> None:
    """The file's records become locations; the C extension reads it when the wheel has one."""
    path = write_database(tmp_path / "city.mmdb")
    database = GeoDatabase(FileSource(str(path)))
    assert city_of(database) == LOCATIONS[FULL_V4]["city"]
    assert database.locator() is database.locator()
    assert database.extension is True


def test_the_pure_python_reader_gives_the_same_locations(tmp_path: Path) -> None:
    """maxminddb without its C extension (MODE_MMAP) reads the same file to the same lines."""
    path = write_database(tmp_path / "city.mmdb")
    extension = GeoDatabase(FileSource(str(path)))
    python = GeoDatabase(FileSource(str(path)), open_reader=pure)
    lines = [b'{"clientIp":"%s"}' % address.split("/")[0].encode() for address in CITY_DATABASE]
    lines += [b'{"clientIp":"81.2.69.%d"}' % n for n in range(0, 256, 17)]
    assert [enrich(line, OPTION, python.locator()) for line in lines] == [
        enrich(line, OPTION, extension.locator()) for line in lines
    ]
    assert python.extension is False


def test_a_replaced_file_is_opened_again_once_the_check_is_due(tmp_path: Path) -> None:
    """The operator renames a new file over the old: within `check_every` seconds, signals get the new
    locations; until then, the old ones."""
    clock = Clock()
    path = write_database(tmp_path / "city.mmdb")
    database = GeoDatabase(FileSource(str(path)), check_every=300, clock=clock)
    first = database.locator()
    assert city_of(database) == "Sampleton"
    write_database(path, RENAMED_DATABASE)
    clock.now += 299
    assert database.locator() is first and city_of(database) == "Sampleton"
    clock.now += 1
    assert city_of(database) == "Renamedton"
    assert database.locator() is not first
    # The old version still answers a thread that holds it: it is let go, never closed under a reader.
    assert enrich(b'{"clientIp":"81.2.69.161"}', OPTION, first)[1] is Outcome.LOCATED


def test_the_file_is_checked_at_most_every_check_seconds(tmp_path: Path) -> None:
    """One stat per interval, however many batches ask."""
    clock = Clock()
    checks: list[float] = []

    class Counting(FileSource):
        def version(self) -> Hashable:
            checks.append(clock.now)
            return super().version()

    database = GeoDatabase(Counting(str(write_database(tmp_path / "city.mmdb"))), check_every=60, clock=clock)
    for _ in range(5):
        for _ in range(100):
            database.locator()
        clock.now += 30
    assert sorted(set(checks)) == [1000.0, 1060.0, 1120.0]  # the first load also stats to fetch


def test_a_broken_replacement_keeps_the_loaded_version_and_is_tried_again(tmp_path: Path) -> None:
    """A truncated or foreign file is not a database: the old version stays; the fixed file is opened
    at the next try (after `retry_every`, not the whole check interval)."""
    clock = Clock()
    path = write_database(tmp_path / "city.mmdb")
    database = GeoDatabase(FileSource(str(path)), check_every=300, retry_every=30, clock=clock)
    assert city_of(database) == "Sampleton"
    broken = tmp_path / "broken"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    os.replace(broken, path)
    clock.now += 300
    assert city_of(database) == "Sampleton"
    write_database(path, RENAMED_DATABASE)
    clock.now += 29
    assert city_of(database) == "Sampleton"
    clock.now += 1
    assert city_of(database) == "Renamedton"


def test_without_a_file_addresses_are_anonymised_until_it_appears(tmp_path: Path) -> None:
    """No file yet (or deleted before the first load): no location, the address still anonymised, and
    the file is opened once it is there."""
    clock = Clock()
    path = tmp_path / "city.mmdb"
    database = GeoDatabase(FileSource(str(path)), check_every=300, retry_every=30, clock=clock)
    assert enrich(CLIENT, LocationOption("/clientIp"), database.locator()) == (
        b'{"clientIp":"81.2.69.0"}',
        Outcome.NO_DATABASE,
    )
    assert database.extension is None
    write_database(path)
    clock.now += 30
    assert city_of(database) == "Sampleton"


def test_a_deleted_file_keeps_the_loaded_version(tmp_path: Path) -> None:
    """The operator deletes the file by mistake: the version loaded keeps serving."""
    clock = Clock()
    path = write_database(tmp_path / "city.mmdb")
    database = GeoDatabase(FileSource(str(path)), clock=clock)
    assert city_of(database) == "Sampleton"
    path.unlink()
    clock.now += 10_000
    assert city_of(database) == "Sampleton"


def test_the_first_load_is_waited_for_by_every_caller(tmp_path: Path) -> None:
    """While the database loads (a download can take seconds), a second batch waits for it rather than
    going out without locations."""
    path = write_database(tmp_path / "city.mmdb")
    started, release = threading.Event(), threading.Event()

    class Slow(FileSource):
        def fetch(self) -> Fetched:
            started.set()
            release.wait(10)
            return super().fetch()

    database = GeoDatabase(Slow(str(path)))
    cities: list[str | None] = []
    first = threading.Thread(target=lambda: cities.append(city_of(database)))
    first.start()
    started.wait(10)
    second = threading.Thread(target=lambda: cities.append(city_of(database)))
    second.start()
    release.set()
    first.join(10)
    second.join(10)
    assert cities == ["Sampleton", "Sampleton"]


def test_threads_enrich_while_the_file_is_replaced(tmp_path: Path) -> None:
    """Eight threads enrich while the database is replaced again and again: no error, and every line
    gets a location from one version or the other."""
    clock = Clock()
    path = write_database(tmp_path / "city.mmdb")
    database = GeoDatabase(FileSource(str(path)), check_every=1, clock=clock)
    stop = threading.Event()
    seen: set[str | None] = set()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            n = 0
            while not stop.is_set():
                n = (n + 1) % 250
                seen.add(city_of(database, b'{"clientIp":"81.2.69.%d"}' % n))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for round_ in range(10):
        write_database(path, RENAMED_DATABASE if round_ % 2 == 0 else CITY_DATABASE)
        clock.now += 1
        database.locator()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert seen <= {"Sampleton", "Renamedton"} and "Renamedton" in seen


def test_a_corrupt_record_reads_as_unknown(tmp_path: Path) -> None:
    """maxminddb raises InvalidDatabaseError on a damaged record: that address is unknown, the rest goes on."""

    class Damaged:
        def get(self, address: str) -> Any:
            raise maxminddb.InvalidDatabaseError("The MaxMind DB file's data section contains bad data")

        def metadata(self) -> Any:
            return maxminddb.open_database(str(write_database(tmp_path / "m.mmdb"))).metadata()

    database = GeoDatabase(
        FileSource(str(write_database(tmp_path / "city.mmdb"))), open_reader=lambda _: Damaged()
    )
    assert enrich(CLIENT, OPTION, database.locator()) == (CLIENT, Outcome.UNKNOWN_ADDRESS)


def test_the_factory_follows_the_settings(tmp_path: Path) -> None:
    """A path gives a file source, `<container>/<blob>` a blob of the service's storage, neither nothing."""
    assert location_database(Settings(), _no_blobs) is None
    path = write_database(tmp_path / "city.mmdb")
    database = location_database(
        Settings(location_database_path=str(path), location_check_seconds=5), _no_blobs
    )
    assert database is not None and city_of(database) == "Sampleton"
    service = BlobServiceClient.from_connection_string("UseDevelopmentStorage=true")  # no request is made
    blob = location_database(Settings(location_database_blob="geo/GeoLite2-City.mmdb"), lambda: service)
    assert blob is not None and isinstance(blob._source, BlobSource)
    assert blob._source.where == "LOCATION_DATABASE_BLOB (geo/GeoLite2-City.mmdb)"


def _no_blobs() -> BlobServiceClient:
    raise AssertionError("a file database needs no Blob client")


def test_a_missing_file_is_unavailable_with_the_setting_named(tmp_path: Path) -> None:
    """The operator's log says which setting names what, and why it cannot be read."""
    with pytest.raises(SourceUnavailable, match=r"LOCATION_DATABASE_PATH \(.*missing.mmdb\): No such file"):
        FileSource(str(tmp_path / "missing.mmdb")).version()
