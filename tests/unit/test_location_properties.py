"""Properties of location enrichment over generated JSON: whatever the body, its spacing, its escapes
and the copies of the address elsewhere in it, the output is the input with exactly the address token
replaced and the location member inserted; and no input makes it raise."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from random import Random
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.location import Locator, OptionError, Outcome, anonymized, enrich, enrich_lines, pointer_tokens
from shared.model import LocationOption
from shared.signals import IncomingEvent, SignalReader
from tests.geodata import CITY_DATABASE, FULL_V4, FULL_V6, LOCATIONS, NO_CITY_V4, UNKNOWN_V4

RECORDS = {
    FULL_V4: CITY_DATABASE["81.2.69.0/24"],
    NO_CITY_V4: CITY_DATABASE["175.16.199.0/24"],
    FULL_V6: CITY_DATABASE["2a02:cf40::/32"],
}
ANONYMISED = {
    FULL_V4: "81.2.69.0",
    NO_CITY_V4: "175.16.199.0",
    FULL_V6: "2a02:cf40:1234::",
    UNKNOWN_V4: "9.9.9.0",
}
ADDRESSES = [FULL_V4, NO_CITY_V4, FULL_V6, UNKNOWN_V4, "10.0.0.1"]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAIN_PROPERTY = settings(PROPERTY, max_examples=400)


def locator() -> Locator:
    return Locator(RECORDS.get)


class Target:
    """Where the address goes in a generated document: the serializer notes its token's bytes."""


TARGET = Target()

keys = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8
)  # in pointers
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(ADDRESSES),  # the same address elsewhere, as a decoy
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(keys, st.sampled_from(ADDRESSES)), children, max_size=4),
    ),
    max_leaves=20,
)


@st.composite
def documents(draw: st.DrawFn) -> tuple[dict[str, Any], list[str | int], str]:
    """A JSON object with the address at a generated path (through objects and arrays), and the path."""
    document = draw(st.dictionaries(keys, values, max_size=6))
    document.pop("location", None)
    path: list[str | int] = [draw(names)]
    for _ in range(draw(st.integers(0, 3))):
        path.append(draw(st.one_of(names, st.integers(0, 2))))
    node: Any = document
    for step, following in pairwise(path):
        child: Any = [] if isinstance(following, int) else {}
        if isinstance(step, int):
            while len(node) <= step:
                node.append(draw(scalars))
            node[step] = child
        else:
            node[step] = child
        node = child
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(draw(scalars))
    node[last] = TARGET
    return document, path, draw(st.sampled_from(ADDRESSES))


class Writer:
    """JSON with random spacing and random escapes (any character of a string may be written \\uXXXX),
    noting the byte span of the target's token. The choices come from one drawn Random: drawing each
    space and character from hypothesis would make every example ten times slower."""

    def __init__(self, random: Random, address: str) -> None:
        self.random = random
        self.address = address
        self.out = bytearray()
        self.span = (0, 0)

    def space(self) -> None:
        self.out += self.random.choice([b"", b"", b" ", b"\t", b"  "])

    def string(self, text: str) -> None:
        mode = self.random.choice(["plain", "plain", "escaped", "mixed"])
        self.out += b'"'
        for char in text:
            plain = json.dumps(char, ensure_ascii=False)[1:-1]
            escape = mode == "escaped" or (mode == "mixed" and self.random.random() < 0.5)
            if escape:
                self.out += json.dumps(char, ensure_ascii=True)[1:-1].encode()
                if len(json.dumps(char, ensure_ascii=True)) == 3:  # ASCII that JSON writes as itself
                    self.out[-1:] = b"\\u%04x" % ord(char)
            else:
                self.out += plain.encode()
        self.out += b'"'

    def value(self, value: Any) -> None:
        self.space()
        if value is TARGET:
            start = len(self.out)
            self.string(self.address)
            self.span = (start, len(self.out))
        elif isinstance(value, dict):
            self.out += b"{"
            for index, (key, item) in enumerate(value.items()):
                if index:
                    self.space()
                    self.out += b","
                self.space()
                self.string(key)
                self.space()
                self.out += b":"
                self.value(item)
            self.space()
            self.out += b"}"
        elif isinstance(value, list):
            self.out += b"["
            for index, item in enumerate(value):
                if index:
                    self.space()
                    self.out += b","
                self.value(item)
            self.space()
            self.out += b"]"
        elif isinstance(value, str):
            self.string(value)
        else:
            self.out += orjson.dumps(value)
        self.space()


def pointer(path: list[str | int]) -> str:
    return "".join("/" + str(step).replace("~", "~0").replace("/", "~1") for step in path)


def plain(value: Any, address: str) -> Any:
    """The document as JSON decodes it, the target being the address."""
    if value is TARGET:
        return address
    if isinstance(value, dict):
        return {key: plain(item, address) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item, address) for item in value]
    return value


@MAIN_PROPERTY
@given(generated=documents(), anonymize=st.booleans(), data=st.data())
def test_only_the_address_token_changes_and_the_location_is_inserted(
    generated: tuple[dict[str, Any], list[str | int], str], anonymize: bool, data: st.DataObject
) -> None:
    """Output = input[:s] + anonymised token + input[t:e] + location member + input[e:], where [s, t) is
    the address's token and e the final brace; it decodes to the input plus the location member."""
    document, path, address = generated
    option = LocationOption(pointer(path), anonymize=anonymize)
    assume(len(option.ip_field) <= 512 and path[0] != "location")
    writer = Writer(data.draw(st.randoms(use_true_random=False)), address)
    writer.value(document)
    line = bytes(writer.out)
    start, stop = writer.span
    end = line.rindex(b"}")
    enriched, outcome = enrich(line, option, locator())

    member = b',"location":' + orjson.dumps(LOCATIONS[address]) if address in LOCATIONS else b""
    token = line[start:stop]
    if anonymize and address in ANONYMISED:
        token = b'"' + ANONYMISED[address].encode() + b'"'
    expected_outcome = {FULL_V4: Outcome.LOCATED, NO_CITY_V4: Outcome.LOCATED, FULL_V6: Outcome.LOCATED}.get(
        address, Outcome.UNKNOWN_ADDRESS if address == UNKNOWN_V4 else Outcome.NOT_PUBLIC
    )
    assert outcome is expected_outcome
    assert enriched == line[:start] + token + line[stop:end] + member + line[end:]
    decoded = json.loads(enriched)
    expected = plain(document, json.loads(token))
    if member:
        expected["location"] = LOCATIONS[address]
    assert decoded == expected


@PROPERTY
@given(generated=documents(), data=st.data())
def test_a_body_that_has_the_key_is_exported_as_sent(
    generated: tuple[dict[str, Any], list[str | int], str], data: st.DataObject
) -> None:
    """Whatever the body holds, a top-level `location` (spelt in any way) leaves it unchanged."""
    document, path, address = generated
    assume(path[0] != "location")
    document["location"] = data.draw(values)
    writer = Writer(data.draw(st.randoms(use_true_random=False)), address)
    writer.value(document)
    line = bytes(writer.out)
    assert enrich(line, LocationOption(pointer(path)), locator()) == (line, Outcome.KEY_PRESENT)


FRAGMENTS = [
    b'"clientIp"',
    b":",
    b'"81.2.69.160"',
    b"{",
    b"}",
    b",",
    b'"location"',
    b"[",
    b"]",
    b"\\",
    b" ",
    b"1",
]


@PROPERTY
@given(
    line=st.one_of(st.binary(max_size=200), st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(b"".join))
)
def test_arbitrary_bytes_never_raise(line: bytes) -> None:
    """Any bytes, alone or in a batch: the line itself (not an object), or a valid enriched object."""
    known = locator()
    enriched, outcome = enrich(line, LocationOption("/clientIp"), known)
    assert enriched == line or json.loads(enriched)["location"]
    assert isinstance(outcome, Outcome)
    assert enrich_lines([(1, line)], LocationOption("/clientIp"), known) == (
        [(1, enriched)],
        Counter({outcome: 1}),
    )


@PROPERTY
@given(generated=documents(), data=st.data())
def test_damaged_json_never_raises(
    generated: tuple[dict[str, Any], list[str | int], str], data: st.DataObject
) -> None:
    """A generated body with bytes cut, doubled or replaced: never an exception; invalid JSON stays as sent."""
    document, path, address = generated
    writer = Writer(data.draw(st.randoms(use_true_random=False)), address)
    writer.value(document)
    line = bytearray(writer.out)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(line) - 1))
        edit = data.draw(st.sampled_from(["cut", "double", "replace"]))
        if edit == "cut":
            del line[at]
        elif edit == "double":
            line.insert(at, line[at])
        else:
            line[at] = data.draw(st.sampled_from(b'"\\{}[]:,0 .ux\xff'))
    damaged = bytes(line)
    enriched, outcome = enrich(damaged, LocationOption(pointer(path)), locator())
    try:
        json.loads(damaged)
    except ValueError:
        assert (enriched, outcome) == (damaged, Outcome.NOT_AN_OBJECT)


@PROPERTY
@given(
    tokens=st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"])),
        min_size=1,
        max_size=5,
    )
)
def test_a_pointer_of_any_names_reads_back_as_those_names(tokens: list[str]) -> None:
    """Escaping `~` and `/` then reading the pointer gives the names back (RFC 6901 round trip)."""
    text = pointer(list(tokens))
    assume(len(text) <= 512)
    assert pointer_tokens(text) == tuple(tokens)


@PROPERTY
@given(text=st.text())
def test_any_text_is_a_pointer_or_refused_clearly(text: str) -> None:
    """pointer_tokens never raises anything but OptionError, which names the property."""
    error: OptionError | None = None
    try:
        pointer_tokens(text)
    except OptionError as refused:
        error = refused
    assert error is None or "location.ipField" in str(error)


@PROPERTY
@given(number=st.integers(0, 2**128 - 1))
def test_an_anonymised_ipv6_address_is_written_as_ipaddress_writes_it(number: int) -> None:
    """The hand-built text of an IPv6 address with its last 80 bits zeroed is RFC 5952's, as `str` gives."""
    address = ipaddress.IPv6Address(number)
    assume(address.ipv4_mapped is None)
    assert anonymized(address) == str(ipaddress.IPv6Address(number & ~((1 << 80) - 1)))


@PROPERTY
@given(number=st.integers(0, 2**32 - 1))
def test_an_ipv4_client_is_anonymised_the_same_whatever_the_path(number: int) -> None:
    """The address's last octet is zeroed, by the text shortcut for a new client as by `anonymized`."""
    text = str(ipaddress.IPv4Address(number))
    expected = str(ipaddress.IPv4Address(number & ~0xFF))
    assert anonymized(ipaddress.IPv4Address(number)) == expected
    located = Locator(lambda address: None).address(text)
    if located[0] is Outcome.UNKNOWN_ADDRESS:
        assert located[2] in {None, b'"' + expected.encode() + b'"'}


@MAIN_PROPERTY
@given(generated=documents(), anonymize=st.booleans(), ascii_only=st.booleans())
def test_a_batch_gives_each_line_what_a_single_line_gives(
    generated: tuple[dict[str, Any], list[str | int], str], anonymize: bool, ascii_only: bool
) -> None:
    """enrich_lines (with its shortcut for compact lines of known clients) and enrich agree, line by line."""
    document, path, address = generated
    option = LocationOption(pointer(path), anonymize=anonymize)
    assume(len(option.ip_field) <= 512)
    line = json.dumps(plain(document, address), separators=(",", ":"), ensure_ascii=ascii_only).encode()
    known = locator()
    single = enrich(line, option, known)  # also makes the client known, as a busy client is
    assert enrich_lines([(7, line)], option, known) == ([(7, single[0])], Counter({single[1]: 1}))


@MAIN_PROPERTY
@given(generated=documents(), anonymize=st.booleans(), ascii_only=st.booleans(), data=st.data())
def test_signal_lines_are_enriched_as_any_line_is(
    generated: tuple[dict[str, Any], list[str | int], str],
    anonymize: bool,
    ascii_only: bool,
    data: st.DataObject,
) -> None:
    """The export path's lines (SignalReader's, enriched without parsing them again) get what `enrich`
    gives each line alone: compact ones of known clients (the shortcut), spaced or escaped ones, with
    the target key or without."""
    document, path, address = generated
    assume(path[0] not in ("location", "name"))
    document["name"] = "request"
    if data.draw(st.booleans()):
        document["location"] = data.draw(values)
    option = LocationOption(pointer(path), anonymize=anonymize)
    assume(len(option.ip_field) <= 512)
    compact = json.dumps(plain(document, address), separators=(",", ":"), ensure_ascii=ascii_only).encode()
    writer = Writer(data.draw(st.randoms(use_true_random=False)), address)
    writer.value(document)
    bodies = [compact, bytes(writer.out), compact]
    at = datetime(2026, 1, 15, 10, tzinfo=UTC)
    groups, rejections = SignalReader().group([IncomingEvent(b, i, at, "p") for i, b in enumerate(bodies)])
    assert not rejections
    (lines,) = groups.values()
    known = locator()
    alone = [enrich(line, option, known) for _, line in lines]  # also makes the client known
    enriched, counts = enrich_lines(lines, option, known, signals=True)
    assert enriched == [(sequence, line) for (sequence, _), (line, _) in zip(lines, alone, strict=True)]
    assert counts == Counter(outcome for _, outcome in alone)
