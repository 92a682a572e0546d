"""Small MaxMind DB files written by the tests themselves (mmdb-writer), in the GeoIP2/GeoLite2 City
record shape. The places are invented for the tests and attached to arbitrary public ranges: nothing
here is anyone's location data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def place(
    continent: tuple[str, str] | None = None,
    country: tuple[str, str] | None = None,
    subdivisions: tuple[str, ...] = (),
    city: str | None = None,
) -> dict[str, Any]:
    """A City record: continent (code, English name), country (ISO code, English name), subdivisions
    (English names, most significant first), city (English name); names also in German, as the real
    databases have several languages."""
    record: dict[str, Any] = {}
    if continent:
        record["continent"] = {"code": continent[0], "geoname_id": 1, "names": _names(continent[1])}
    if country:
        record["country"] = {"iso_code": country[0], "geoname_id": 2, "names": _names(country[1])}
        record["registered_country"] = record["country"]
    if subdivisions:
        record["subdivisions"] = [
            {"iso_code": f"S{i}", "geoname_id": 3 + i, "names": _names(name)}
            for i, name in enumerate(subdivisions)
        ]
    if city:
        record["city"] = {"geoname_id": 9, "names": _names(city)}
    return record


def _names(english: str) -> dict[str, str]:
    return {"en": english, "de": english + " (de)"}


FULL_V4 = "81.2.69.160"
COUNTRY_ONLY_V4 = "89.160.20.112"
NO_CITY_V4 = "175.16.199.7"
REGISTERED_ONLY_V4 = "216.160.83.56"  # a record with none of the fields a location has
UNKNOWN_V4 = "9.9.9.9"  # public, in no range of the database
FULL_V6 = "2a02:cf40:1234:5678:9abc:def0:1:2"
UNKNOWN_V6 = "2a03:1:2:3::4"

CITY_DATABASE: dict[str, dict[str, Any]] = {
    "81.2.69.0/24": place(
        ("EU", "Europe"), ("GB", "Testshire Kingdom"), ("North Region", "Second"), "Sampleton"
    ),
    "89.160.20.0/24": place(("EU", "Europe"), ("SE", "Exampleland")),
    "175.16.199.0/24": place(("AS", "Asia"), ("CN", "Mockland"), ("Province One",)),
    "216.160.83.0/24": {"registered_country": {"iso_code": "US", "names": _names("Placeholder States")}},
    "2a02:cf40::/32": place(("EU", "Europe"), ("NO", "Fjordland"), ("Fylke",), "Testby"),
}

RENAMED_DATABASE: dict[str, dict[str, Any]] = {
    "81.2.69.0/24": place(("EU", "Europe"), ("GB", "Testshire Kingdom"), (), "Renamedton"),
}
"""A later version of the database, in which FULL_V4's city has another name."""


class Clock:
    """A monotonic clock the test moves by hand (the database's check interval, without sleeping)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


LOCATIONS: dict[str, dict[str, Any]] = {
    FULL_V4: {
        "continent": "Europe",
        "country": {"isoCode": "GB", "name": "Testshire Kingdom"},
        "province": "North Region",
        "city": "Sampleton",
    },
    COUNTRY_ONLY_V4: {"continent": "Europe", "country": {"isoCode": "SE", "name": "Exampleland"}},
    NO_CITY_V4: {
        "continent": "Asia",
        "country": {"isoCode": "CN", "name": "Mockland"},
        "province": "Province One",
    },
    FULL_V6: {
        "continent": "Europe",
        "country": {"isoCode": "NO", "name": "Fjordland"},
        "province": "Fylke",
        "city": "Testby",
    },
}
"""What the enrichment writes for each address of CITY_DATABASE (None for the others)."""


def write_database(
    path: Path,
    networks: Mapping[str, Mapping[str, Any]] = CITY_DATABASE,
    *,
    ip_version: int = 6,
    database_type: str = "Test-City",
) -> Path:
    """A MaxMind DB file at `path` holding `networks` (CIDR -> record), written beside and renamed
    over the path, as infra/README.md tells an operator to replace it."""
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en", "de"],
        description="signals-export test database",
    )
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), dict(record))
    scratch = path.with_name(path.name + ".tmp")
    writer.to_db_file(str(scratch))
    os.replace(scratch, path)
    return path
