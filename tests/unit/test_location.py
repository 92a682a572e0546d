"""Location enrichment of a signal line: what is added, what is anonymised, what is left as sent and
counted why, and that nothing else of the body changes, byte for byte."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import maxminddb
import orjson
import pytest

from shared import jsontext
from shared.location import (
    Enrichments,
    Locator,
    OptionError,
    Outcome,
    enrich,
    enrich_lines,
    location_json,
    member_name,
    pointer_tokens,
)
from shared.model import LocationOption
from shared.signals import line_of
from tests.geodata import (
    CITY_DATABASE,
    COUNTRY_ONLY_V4,
    FULL_V4,
    FULL_V6,
    LOCATIONS,
    NO_CITY_V4,
    REGISTERED_ONLY_V4,
    UNKNOWN_V4,
    UNKNOWN_V6,
    write_database,
)

CLIENT_IP = LocationOption("/clientIp")
KEEP_ADDRESS = LocationOption("/clientIp", anonymize=False)


@pytest.fixture(scope="module", params=["extension", "pure-python"])
def reader(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The test City database, read by maxminddb's C extension and by its pure-Python reader."""
    path = write_database(tmp_path_factory.mktemp("geo") / "city.mmdb")
    mode = maxminddb.MODE_MMAP_EXT if request.param == "extension" else maxminddb.MODE_MMAP
    with maxminddb.open_database(str(path), mode) as opened:
        assert (type(opened).__module__ == "maxminddb.extension") == (request.param == "extension")
        yield opened


@pytest.fixture
def locator(reader: Any) -> Locator:
    return Locator(reader.get)


def both(line: bytes, option: LocationOption, locator: Locator) -> tuple[bytes, Outcome]:
    """What `enrich` makes of a line, checked equal to what `enrich_lines` makes of it once its client
    is known (its shortcut for compact lines of known clients), and, for a line the export path can
    carry (a JSON object, as its reader leaves it), to what it makes of it as a signal line."""
    single = enrich(line, option, locator)
    expected = ([(3, single[0])], Counter({single[1]: 1}))
    assert enrich_lines([(3, line)], option, locator) == expected
    if is_signal_line(line):
        assert enrich_lines([(3, line)], option, locator, signals=True) == expected
    return single


def is_signal_line(line: bytes) -> bool:
    """Whether a line is one `SignalReader` gives: a JSON object by RFC 8259, on one line, no BOM."""
    try:
        top = jsontext.read_top(line.decode(), "name")
    except (UnicodeDecodeError, ValueError):
        return False
    return top.is_object and line_of(line) == line


def member(location: dict[str, Any], key: str = "location") -> bytes:
    return b"," + orjson.dumps(key) + b":" + orjson.dumps(location)


# -- what is added --------------------------------------------------------------------------------


def test_an_ipv4_client_is_located_and_its_last_octet_zeroed_nothing_else_changes(locator: Locator) -> None:
    """The location member is inserted before the final brace and the address anonymised in place."""
    line = b'{"name":"request","clientIp":"81.2.69.160","duration":1.50,"ok":true}'
    enriched, outcome = both(line, CLIENT_IP, locator)
    assert outcome is Outcome.LOCATED
    assert enriched == (
        b'{"name":"request","clientIp":"81.2.69.0","duration":1.50,"ok":true'
        + member(LOCATIONS[FULL_V4])
        + b"}"
    )
    assert json.loads(enriched)["location"] == {
        "continent": "Europe",
        "country": {"isoCode": "GB", "name": "Testshire Kingdom"},
        "province": "North Region",
        "city": "Sampleton",
    }


def test_an_ipv6_client_is_located_and_its_last_80_bits_zeroed(locator: Locator) -> None:
    """2a02:cf40:1234:5678:9abc:def0:1:2 keeps its first 48 bits: 2a02:cf40:1234::."""
    line = b'{"name":"pageView","context":{"location":{"ip":"' + FULL_V6.encode() + b'"}}}'
    option = LocationOption("/context/location/ip", key="geo")
    enriched, outcome = both(line, option, locator)
    assert outcome is Outcome.LOCATED
    assert enriched == (
        b'{"name":"pageView","context":{"location":{"ip":"2a02:cf40:1234::"}}'
        + member(LOCATIONS[FULL_V6], "geo")
        + b"}"
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (COUNTRY_ONLY_V4, {"continent": "Europe", "country": {"isoCode": "SE", "name": "Exampleland"}}),
        (
            NO_CITY_V4,
            {
                "continent": "Asia",
                "country": {"isoCode": "CN", "name": "Mockland"},
                "province": "Province One",
            },
        ),
    ],
)
def test_only_the_fields_the_database_knows_are_written(
    locator: Locator, address: str, expected: dict[str, Any]
) -> None:
    """A range without a city, or without a subdivision, gives a location without them."""
    line = b'{"clientIp":"' + address.encode() + b'"}'
    enriched, outcome = both(line, KEEP_ADDRESS, locator)
    assert outcome is Outcome.LOCATED
    assert enriched == line[:-1] + member(expected) + b"}"


def test_without_anonymisation_the_address_stays_byte_for_byte(locator: Locator) -> None:
    """anonymize off: only the location member is added."""
    line = b'{"clientIp":"81.2.69.160","name":"x"}'
    enriched, outcome = both(line, KEEP_ADDRESS, locator)
    assert (outcome, enriched) == (Outcome.LOCATED, line[:-1] + member(LOCATIONS[FULL_V4]) + b"}")


def test_an_ipv4_mapped_ipv6_address_is_located_as_its_ipv4_and_keeps_its_form(locator: Locator) -> None:
    """::ffff:81.2.69.160 (a dual-stack server's view of an IPv4 client) is located and written ::ffff:81.2.69.0."""
    line = b'{"clientIp":"::ffff:81.2.69.160"}'
    enriched, outcome = both(line, CLIENT_IP, locator)
    assert (outcome, enriched) == (
        Outcome.LOCATED,
        b'{"clientIp":"::ffff:81.2.69.0"' + member(LOCATIONS[FULL_V4]) + b"}",
    )


def test_whitespace_around_tokens_and_after_the_object_is_kept(locator: Locator) -> None:
    """A body with spaces keeps them all; the member goes right before the final brace."""
    line = b'  { "clientIp" :  "81.2.69.160" ,\t"n" : [ 1 , 2 ] }  \t'
    enriched, _ = both(line, CLIENT_IP, locator)
    assert (
        enriched
        == b'  { "clientIp" :  "81.2.69.0" ,\t"n" : [ 1 , 2 ] ' + member(LOCATIONS[FULL_V4]) + b"}  \t"
    )


# -- exported as sent, and why ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104  # an address in a signal, not one to bind
        "255.255.255.255",
        "224.0.0.251",
        "240.0.0.1",
        "192.0.2.10",  # documentation
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "2001:db8::1",  # documentation
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
    ],
)
def test_a_private_or_reserved_address_is_left_as_sent(locator: Locator, address: str) -> None:
    """No location, no anonymisation: the line itself, counted not-public."""
    line = b'{"clientIp":"' + address.encode() + b'"}'
    enriched, outcome = both(line, CLIENT_IP, locator)
    assert (outcome, enriched) == (Outcome.NOT_PUBLIC, line)
    assert enriched is line


@pytest.mark.parametrize(
    "value",
    [
        "",
        "81.2.69",
        "81.2.69.256",
        "081.2.69.160",  # leading zeros are ambiguous (octal in some parsers)
        " 81.2.69.160",
        "81.2.69.160 ",
        "81.2.69.160/24",
        "2a02::cf40::1",
        "2a02:cf40:g::1",
        "fe80::1%eth0",
        "localhost",
        "\u0661.\u0662.\u0663.\u0664",  # Arabic-Indic digits
        "8" * 200,
        "81.2.69.160\u0000",
    ],
)
def test_a_malformed_address_is_left_as_sent(locator: Locator, value: str) -> None:
    """Anything that is not an IPv4 or IPv6 address in its usual text form: the line itself."""
    line = b'{"clientIp":' + json.dumps(value).encode() + b"}"
    enriched, outcome = both(line, CLIENT_IP, locator)
    assert (outcome, enriched) == (Outcome.INVALID_ADDRESS, line)


@pytest.mark.parametrize(
    "value",
    [
        b"1",
        b"null",
        b"true",
        b"{}",
        b'{"ip":"81.2.69.160"}',
        b'["81.2.69.160"]',
        b'null,"clientIp":"81.2.69.160"',  # of two members of that name, the first is the field
    ],
)
def test_a_value_that_is_not_a_string_is_left_as_sent(locator: Locator, value: bytes) -> None:
    """A number, null, boolean, object or array at the pointer: the line itself, counted not-a-string."""
    line = b'{"clientIp":' + value + b"}"
    assert both(line, CLIENT_IP, locator) == (line, Outcome.NOT_A_STRING)


@pytest.mark.parametrize(
    ("line", "pointer"),
    [
        (b'{"name":"x"}', "/clientIp"),
        (b'{"clientip":"81.2.69.160"}', "/clientIp"),  # names are case-sensitive
        (b'{"context":{"ip":"81.2.69.160"}}', "/context/location/ip"),
        (b'{"context":"81.2.69.160"}', "/context/ip"),
        (b'{"ips":["81.2.69.160"]}', "/ips/1"),
        (b'{"ips":["81.2.69.160"]}', "/ips/-"),
        (b'{"ips":["81.2.69.160"]}', "/ips/00"),
        (b'{"ips":{"0":"x"},"a":["81.2.69.160"]}', "/a/x"),
    ],
)
def test_a_signal_without_the_field_is_left_as_sent(locator: Locator, line: bytes, pointer: str) -> None:
    """Nothing at the pointer (absent name, other case, past an array's end, `-`, leading zeros): as sent."""
    assert both(line, LocationOption(pointer), locator) == (line, Outcome.MISSING_FIELD)


@pytest.mark.parametrize(
    "line",
    [
        b'{"clientIp":"81.2.69.160","location":{"city":"theirs"}}',
        b'{"location":null,"clientIp":"81.2.69.160"}',
        b'{"clientIp":"81.2.69.160","loc\\u0061tion":1}',  # the same name spelt with an escape
    ],
)
def test_a_signal_that_already_has_the_key_is_left_as_sent(locator: Locator, line: bytes) -> None:
    """Its own `location` is not overwritten, and its address not touched."""
    assert both(line, CLIENT_IP, locator) == (line, Outcome.KEY_PRESENT)


def test_the_key_counts_only_at_top_level(locator: Locator) -> None:
    """A nested `location` is the signal's business: the top-level member is still added."""
    line = b'{"context":{"location":{"ip":"81.2.69.160"}}}'
    enriched, outcome = both(line, LocationOption("/context/location/ip"), locator)
    assert outcome is Outcome.LOCATED
    assert enriched == b'{"context":{"location":{"ip":"81.2.69.0"}}' + member(LOCATIONS[FULL_V4]) + b"}"


@pytest.mark.parametrize(("address", "anonymised"), [(UNKNOWN_V4, "9.9.9.0"), (UNKNOWN_V6, "2a03:1:2::")])
def test_an_address_the_database_does_not_know_is_anonymised_without_a_location(
    locator: Locator, address: str, anonymised: str
) -> None:
    """Public but unknown: the option promises an anonymised address, so it is; nothing is added."""
    line = b'{"clientIp":"' + address.encode() + b'"}'
    assert both(line, CLIENT_IP, locator) == (
        b'{"clientIp":"' + anonymised.encode() + b'"}',
        Outcome.UNKNOWN_ADDRESS,
    )
    assert both(line, KEEP_ADDRESS, locator) == (line, Outcome.UNKNOWN_ADDRESS)


def test_a_record_without_any_location_field_counts_as_unknown(locator: Locator) -> None:
    """A range that only has a registered country (no continent, country, subdivision or city)."""
    line = b'{"clientIp":"' + REGISTERED_ONLY_V4.encode() + b'"}'
    assert both(line, KEEP_ADDRESS, locator) == (line, Outcome.UNKNOWN_ADDRESS)


def test_without_a_database_addresses_are_still_anonymised() -> None:
    """The database could not be loaded: no location, but a public address is not exported in full."""
    line = b'{"clientIp":"81.2.69.160","v6":"' + FULL_V6.encode() + b'"}'
    enriched, outcome = both(line, CLIENT_IP, Locator(None))
    assert (enriched, outcome) == (
        b'{"clientIp":"81.2.69.0","v6":"' + FULL_V6.encode() + b'"}',
        Outcome.NO_DATABASE,
    )


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json",
        b"[1,2]",
        b'"81.2.69.160"',
        b"{",
        b'{"a":1}x',
        b"\xff\xfe{}",
        b'{"clientIp":"81.2.69.160",}',  # what a shortcut reading only the start would take
        b'{"clientIp":"81.2.69.160","a":}',
        b'{"clientIp":"81.2.69.160"}}',
    ],
)
def test_a_line_that_is_not_a_json_object_is_left_as_sent(locator: Locator, line: bytes) -> None:
    """Never a valid signal, but never an exception either: the line itself."""
    assert both(line, CLIENT_IP, locator) == (line, Outcome.NOT_AN_OBJECT)


def test_an_ipv6_address_against_an_ipv4_only_database_is_unknown(tmp_path: Path) -> None:
    """maxminddb refuses the lookup (ValueError): the address is unknown to that database."""
    v4 = {network: record for network, record in CITY_DATABASE.items() if ":" not in network}
    with maxminddb.open_database(str(write_database(tmp_path / "v4.mmdb", v4, ip_version=4))) as reader:
        line = b'{"clientIp":"' + FULL_V6.encode() + b'"}'
        assert both(line, KEEP_ADDRESS, Locator(reader.get)) == (line, Outcome.UNKNOWN_ADDRESS)
        assert both(b'{"clientIp":"81.2.69.160"}', KEEP_ADDRESS, Locator(reader.get))[1] is Outcome.LOCATED


# -- JSON escapes and lookalikes -------------------------------------------------------------------


def test_an_address_spelt_with_escapes_is_replaced_by_its_plain_anonymised_form(locator: Locator) -> None:
    """`"\\u00381.2.69.160"` is 81.2.69.160: located; anonymised, its token becomes `"81.2.69.0"`;
    a plain copy of the same address elsewhere is not touched."""
    line = b'{"other":"81.2.69.160","clientIp":"\\u00381.2.69.16\\u0030","n":1}'
    enriched, outcome = both(line, CLIENT_IP, locator)
    assert outcome is Outcome.LOCATED
    assert (
        enriched == b'{"other":"81.2.69.160","clientIp":"81.2.69.0","n":1' + member(LOCATIONS[FULL_V4]) + b"}"
    )


def test_an_address_spelt_with_escapes_stays_as_sent_without_anonymisation(locator: Locator) -> None:
    """anonymize off: the escaped spelling is kept byte for byte, the location added."""
    line = b'{"clientIp":"\\u00381.2.69.160"}'
    enriched, _ = both(line, KEEP_ADDRESS, locator)
    assert enriched == line[:-1] + member(LOCATIONS[FULL_V4]) + b"}"


def test_a_name_spelt_with_escapes_is_the_same_name(locator: Locator) -> None:
    """`"client\\u0049p"` is the member clientIp."""
    line = b'{"client\\u0049p":"81.2.69.160"}'
    enriched, outcome = both(line, CLIENT_IP, locator)
    assert (outcome, enriched) == (
        Outcome.LOCATED,
        b'{"client\\u0049p":"81.2.69.0"' + member(LOCATIONS[FULL_V4]) + b"}",
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # The same address earlier, as a value elsewhere, as a name, and inside another string.
        (
            b'{"a":{"clientIp":"81.2.69.160"},"clientIp":"81.2.69.160"}',
            b'{"a":{"clientIp":"81.2.69.160"},"clientIp":"81.2.69.0"',
        ),
        (
            b'{"clientIp":"81.2.69.160","a":{"clientIp":"81.2.69.160"}}',
            b'{"clientIp":"81.2.69.0","a":{"clientIp":"81.2.69.160"}',
        ),
        (
            b'{"81.2.69.160":"81.2.69.160","clientIp":"81.2.69.160"}',
            b'{"81.2.69.160":"81.2.69.160","clientIp":"81.2.69.0"',
        ),
        (
            b'{"note":"from \\"81.2.69.160\\"","clientIp":"81.2.69.160"}',
            b'{"note":"from \\"81.2.69.160\\"","clientIp":"81.2.69.0"',
        ),
        (b'{"note":"\\\\","clientIp":"81.2.69.160"}', b'{"note":"\\\\","clientIp":"81.2.69.0"'),
        # Duplicate names: the first one is the field (as pysimdjson reads it).
        (
            b'{"clientIp":"81.2.69.160","clientIp":"81.2.69.161"}',
            b'{"clientIp":"81.2.69.0","clientIp":"81.2.69.161"',
        ),
    ],
)
def test_only_the_token_at_the_pointer_is_anonymised(locator: Locator, line: bytes, expected: bytes) -> None:
    """The same address elsewhere (nested, as a name, inside another string, a duplicate name) is kept."""
    enriched, outcome = both(line, CLIENT_IP, locator)
    assert outcome is Outcome.LOCATED
    assert enriched == expected + member(LOCATIONS[FULL_V4]) + b"}"


@pytest.mark.parametrize(
    ("line", "pointer", "expected"),
    [
        (b'{"a/b":{"c~d":"81.2.69.160"}}', "/a~1b/c~0d", b'{"a/b":{"c~d":"81.2.69.0"}'),
        (b'{"ips":["10.0.0.1","81.2.69.160"]}', "/ips/1", b'{"ips":["10.0.0.1","81.2.69.0"]'),
        (b'{"ips":["81.2.69.160","81.2.69.160"]}', "/ips/1", b'{"ips":["81.2.69.160","81.2.69.0"]'),
        (b'{"":{"":"81.2.69.160"}}', "//", b'{"":{"":"81.2.69.0"}'),
        (
            b'{"tags":{"ai.location.ip":"81.2.69.160"}}',
            "/tags/ai.location.ip",
            b'{"tags":{"ai.location.ip":"81.2.69.0"}',
        ),
    ],
)
def test_pointers_follow_rfc_6901(locator: Locator, line: bytes, pointer: str, expected: bytes) -> None:
    """~1 is '/', ~0 is '~', an array takes an index, the empty name is a name."""
    enriched, outcome = both(line, LocationOption(pointer), locator)
    assert (outcome, enriched) == (Outcome.LOCATED, expected + member(LOCATIONS[FULL_V4]) + b"}")


# -- batches ---------------------------------------------------------------------------------------


def test_a_batch_keeps_its_sequence_numbers_and_counts_each_outcome(locator: Locator) -> None:
    """Lines left as sent are the same objects; the counts say why."""
    lines = [
        (10, b'{"clientIp":"81.2.69.160"}'),
        (11, b'{"clientIp":"10.0.0.1"}'),
        (12, b'{"name":"no address"}'),
        (13, b'{"clientIp":"' + FULL_V6.encode() + b'"}'),
        (14, b'{"clientIp":"nonsense"}'),
    ]
    enriched, counts = enrich_lines(lines, CLIENT_IP, locator)
    assert [sequence for sequence, _ in enriched] == [10, 11, 12, 13, 14]
    assert [item is original for item, original in zip(enriched, lines, strict=True)] == [
        False,
        True,
        True,
        False,
        True,
    ]
    assert counts == Counter(
        {Outcome.LOCATED: 2, Outcome.NOT_PUBLIC: 1, Outcome.MISSING_FIELD: 1, Outcome.INVALID_ADDRESS: 1}
    )


def test_a_client_is_looked_up_once_per_database_version() -> None:
    """A client sending many signals costs one lookup: the Locator remembers it."""
    asked: list[str] = []

    def lookup(address: str) -> object:
        asked.append(address)
        return CITY_DATABASE["81.2.69.0/24"]

    lines = [(i, b'{"clientIp":"81.2.69.160","i":%d}' % i) for i in range(50)]
    _, counts = enrich_lines(lines, CLIENT_IP, Locator(lookup))
    assert asked == ["81.2.69.160"] and counts == Counter({Outcome.LOCATED: 50})


def test_exports_that_share_lines_and_an_option_share_one_enrichment() -> None:
    """Enrichments enriches a list once per option: ten exports of one project cost one pass."""
    asked: list[str] = []

    def lookup(address: str) -> object:
        asked.append(address)
        return None

    shared_lines = [(1, b'{"clientIp":"81.2.69.160"}'), (2, b'{"clientIp":"81.2.69.161"}')]
    enrichments = Enrichments(Locator(lookup))
    first, _ = enrichments(shared_lines, CLIENT_IP)
    for _ in range(9):
        again, counts = enrichments(shared_lines, LocationOption("/clientIp"))
        assert again is first and counts == Counter({Outcome.UNKNOWN_ADDRESS: 2})
    other, _ = enrichments(shared_lines, KEEP_ADDRESS)
    assert other is not first and other == shared_lines
    assert sorted(asked) == ["81.2.69.160", "81.2.69.161"]


def test_a_locator_forgets_everything_when_full_and_stays_correct() -> None:
    """Past `remember` addresses the memory starts again; answers do not change."""
    locator = Locator(lambda address: CITY_DATABASE["81.2.69.0/24"], remember=3)
    for last in range(1, 20):
        assert both(b'{"clientIp":"81.2.69.%d"}' % last, CLIENT_IP, locator)[1] is Outcome.LOCATED


def test_the_memory_of_located_spellings_is_bounded_with_the_rest() -> None:
    """The export path's memory of located clients (by spelling) forgets when the locator does."""
    locator = Locator(lambda address: CITY_DATABASE["81.2.69.0/24"], remember=3)
    for last in range(1, 20):
        line = b'{"clientIp":"81.2.69.%d"}' % last
        expected = enrich(line, CLIENT_IP, Locator(lambda address: CITY_DATABASE["81.2.69.0/24"]))[0]
        enriched = enrich_lines([(1, line)], CLIENT_IP, locator, signals=True)
        assert enriched == ([(1, expected)], Counter({Outcome.LOCATED: 1}))
        assert 1 <= len(locator.located) <= len(locator.known) <= 3
    assert locator.spelt(b"10.0.0.1") is None and locator.spelt(b"81.2.69.7") is not None


# -- records of other shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, None),
        ("a string", None),
        ({}, None),
        ({"city": {"names": {"de": "Nur Deutsch"}}}, None),
        ({"city": {"names": "Sampleton"}}, None),
        ({"city": {"names": {"en": ""}}}, None),
        ({"subdivisions": []}, None),
        ({"subdivisions": [{"names": {"en": "First"}}, {"names": {"en": "Second"}}]}, {"province": "First"}),
        ({"country": {"iso_code": 752}}, None),
        ({"country": {"iso_code": "SE"}}, {"country": {"isoCode": "SE"}}),
        (
            {"continent": {"code": "EU"}, "country": {"names": {"en": "Exampleland"}}},
            {"country": {"name": "Exampleland"}},
        ),
    ],
)
def test_a_record_gives_only_the_fields_it_has_in_english(
    record: object, expected: dict[str, Any] | None
) -> None:
    """Any database in the MaxMind DB format can be given: a field of another shape is left out."""
    written = location_json(record)
    assert (None if written is None else orjson.loads(written)) == expected


# -- the option's rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("/clientIp", ("clientIp",)),
        ("/context/location/ip", ("context", "location", "ip")),
        ("/a~1b/c~0d/~01", ("a/b", "c~d", "~1")),
        ("/", ("",)),
        ("/ips/0", ("ips", "0")),
    ],
)
def test_a_pointer_is_read_as_rfc_6901_says(pointer: str, tokens: tuple[str, ...]) -> None:
    """'/' separates names, ~1 and ~0 stand for '/' and '~' (in that order), an empty name is a name."""
    assert pointer_tokens(pointer) == tokens


@pytest.mark.parametrize(
    "pointer",
    ["", "zqaddr", "#/zqaddr", "/zq~2b", "/zq~", "/zq\u0000y", "/zq" + "a" * 600, "/zq" * 40, "/zq\ud800"],
)
def test_a_malformed_pointer_is_refused_without_quoting_it(pointer: str) -> None:
    """The message states the rule; the value (up to the customer) is not in it."""
    with pytest.raises(OptionError) as refused:
        pointer_tokens(pointer)
    assert "location.ipField" in str(refused.value) and "zq" not in str(refused.value)


@pytest.mark.parametrize("key", ["", "1zq", "z q", "zq/b", "zqé", "<zq>", "zq" * 33, 'zq"', "zq\u0000"])
def test_a_malformed_key_is_refused_without_quoting_it(key: str) -> None:
    """A member name any JSON consumer takes as is; the message does not quote the value."""
    with pytest.raises(OptionError) as refused:
        member_name(key)
    assert "location.key" in str(refused.value) and "zq" not in str(refused.value)


@pytest.mark.parametrize("key", ["location", "geo", "_loc", "client.location", "x-geo", "a" * 64])
def test_reasonable_keys_are_accepted(key: str) -> None:
    """Letters, digits, '_', '-', '.', up to 64 characters."""
    assert member_name(key) == key
