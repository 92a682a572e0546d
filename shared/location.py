"""The client's location added to a signal, as Application Insights' continuous export did.

Pure. A signal line is the body's exact bytes; enriching it changes exactly two places and nothing
else: the member `,"<key>":{...}` is inserted before the object's final `}`, and, when anonymising, the
client address's string token is replaced by the anonymised address. The body is never re-serialised.

The usual signal (no backslash, scalar members before the address on its path) is enriched by the
shortcut of `enrich_lines`: one anchored regex match from the line's start, one search for the target
key, one dict lookup of the client and one join; and no parse for the export path's lines, which
their reader has parsed already (`signals`). Any other line (`_enrich`): pysimdjson reads the value
at the export's JSON pointer (one parser per thread), and the address's token is found in the raw
bytes. In a line without a backslash no string is escaped, so every name is spelt plainly and a name
that occurs once is the pointer's member; otherwise each plain candidate `"<name>":"<address>"` is
confirmed by parsing the line with it replaced, and an address or a name spelt with escapes
(`"\\u0031.2.3.4"`) is found by walking the path through the raw bytes.

A signal that cannot be enriched is exported unchanged and counted by its `Outcome`, never dropped. A
public address is anonymised whenever the option says so, even when the database does not know it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson
import simdjson

from shared.delivery import Line
from shared.model import LocationOption

MAX_POINTER = 512
MAX_POINTER_TOKENS = 32
MAX_KEY = 64
MAX_ADDRESS = 45  # the longest text form: ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255
REMEMBERED_ADDRESSES = 65536

_OBJECT = simdjson.Object
_ARRAY = simdjson.Array
_TILDE = re.compile(r"~(?![01])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
_ADDRESS = re.compile(r"[0-9A-Fa-f.:]+")  # an address's plain spelling: no escape, no zone (`%eth0`)
_WHITESPACE = b" \t\r\n"
_BACKSLASH = 92
_COLON = 58


class Outcome(StrEnum):
    """What enrichment did to one signal. Only `located` adds a location; `unknown-address` and
    `no-database` still anonymise a public address; every other outcome leaves the signal as sent."""

    LOCATED = "located"
    UNKNOWN_ADDRESS = "unknown-address"  # public, but the database has no location for it
    NO_DATABASE = "no-database"  # the database could not be loaded (yet)
    NOT_PUBLIC = "not-public"  # private, loopback, link-local, reserved, multicast, unspecified
    INVALID_ADDRESS = "invalid-address"
    NOT_A_STRING = "not-a-string"
    MISSING_FIELD = "missing-field"
    KEY_PRESENT = "key-present"  # the body already has the target key at top level
    NOT_AN_OBJECT = "not-an-object"  # not a JSON object (never a valid signal)


# -- the option's rules (the API validates with these) ---------------------------------------------


class OptionError(ValueError):
    """An enrichment option breaks a rule. The message states the rule, never the value."""


def pointer_tokens(pointer: str) -> tuple[str, ...]:
    """The reference tokens of a JSON pointer (RFC 6901): `/a~1b/c~0d` is `("a/b", "c~d")`.

    The whole document (`""`) is refused: it is an object, never an address."""
    if not pointer.startswith("/"):
        raise OptionError("location.ipField must be a JSON pointer starting with '/', like /clientIp")
    if len(pointer) > MAX_POINTER:
        raise OptionError(f"location.ipField must be at most {MAX_POINTER} characters")
    if _CONTROL.search(pointer) or not _encodable(pointer):
        raise OptionError("location.ipField must be UTF-8 text without control characters")
    tokens = pointer[1:].split("/")
    if len(tokens) > MAX_POINTER_TOKENS:
        raise OptionError(f"location.ipField must have at most {MAX_POINTER_TOKENS} segments")
    if any(_TILDE.search(token) for token in tokens):
        raise OptionError("in location.ipField, '~' must be followed by 0 or 1 ('~0' is '~', '~1' is '/')")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate, which no JSON member name in UTF-8 can hold
        return False
    return True


def member_name(key: str) -> str:
    """The top-level member the location is written under: a name any JSON consumer takes as is."""
    if not (1 <= len(key) <= MAX_KEY and _KEY.fullmatch(key)):
        raise OptionError(
            f"location.key must be 1 to {MAX_KEY} letters, digits, '_', '-' or '.', "
            "starting with a letter or '_'"
        )
    if key == "name":
        raise OptionError("location.key cannot be 'name': every signal has that member already")
    return key


# -- addresses and their locations ----------------------------------------------------------------

Lookup = Callable[[str], object]
"""The database's record for an address in its text form (None when it has none): a MaxMind DB
record, a mapping as GeoIP2/GeoLite2 City databases hold them."""

_Address = tuple[Outcome, bytes, bytes | None, bytes]
"""What an address gives: the outcome, the location object's JSON (b"" unless located), the
anonymised address as a JSON string token (None when not public, or when anonymising changes nothing),
and the address's own plain JSON token."""

_INVALID: Final[_Address] = (Outcome.INVALID_ADDRESS, b"", None, b"")
_NOT_PUBLIC: Final[_Address] = (Outcome.NOT_PUBLIC, b"", None, b"")


class Locator:
    """Addresses to locations, from one version of the database (None: no database loaded).

    Remembers what each address gave, so a client that sends many signals is looked up once; a new
    version of the database gets a new Locator. Safe to share between threads: at worst two threads
    look up the same address at once."""

    def __init__(self, lookup: Lookup | None, *, remember: int = REMEMBERED_ADDRESSES) -> None:
        self._lookup = lookup
        self._remember = remember
        self.known: dict[str, _Address] = {}
        # The located addresses by their plain spelling (the bytes between the quotes): the anonymised
        # token and the location, what the shortcut of `enrich_lines` reads directly, undecoded.
        self.located: dict[bytes, tuple[bytes | None, bytes]] = {}
        self._places: dict[bytes, bytes] = {}

    @property
    def available(self) -> bool:
        return self._lookup is not None

    def address(self, text: str) -> _Address:
        known = self.known.get(text)
        if known is not None:
            return known
        if len(text) > MAX_ADDRESS:
            return _INVALID  # not remembered: a long string would cost memory for nothing
        known = self._classify(text)
        if len(self.known) >= self._remember:
            self.known.clear()  # cheaper than tracking age; busy clients come back at once
            self.located.clear()
            self._places.clear()
        self.known[text] = known
        return known

    def spelt(self, spelling: bytes) -> tuple[bytes | None, bytes] | None:
        """A located address by its plain spelling (ASCII: hex digits, '.' and ':'), remembered so:
        its anonymised token and its location. None when it is not located."""
        found = self.located.get(spelling)
        if found is None:
            outcome, location, replacement, _ = self.address(spelling.decode())
            if outcome is not Outcome.LOCATED:
                return None
            found = self.located[spelling] = (replacement, location)
        return found

    def _classify(self, text: str) -> _Address:
        """One address, the first time it is seen (about 5 us for IPv4, 10 us for IPv6, most of it
        the stdlib's and the database's: measured by bench.location's new-clients case)."""
        if not _ADDRESS.fullmatch(text):
            return _INVALID
        address: ipaddress.IPv4Address | ipaddress.IPv6Address
        try:  # the class the text names, rather than ip_address's try of IPv4 first
            address = ipaddress.IPv6Address(text) if ":" in text else ipaddress.IPv4Address(text)
        except ValueError:
            return _INVALID
        subject = address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            subject = address.ipv4_mapped  # ::ffff:a.b.c.d is an IPv4 client behind a dual-stack server
        if not is_public(subject):
            return _NOT_PUBLIC
        # A text IPv4Address accepts is dotted decimal without leading zeros: its own canonical form.
        masked = (
            text[: text.rindex(".")] + ".0" if subject is address and "." in text else anonymized(address)
        )
        spelt = b'"' + text.encode() + b'"'
        token = None if masked == text else b'"' + masked.encode() + b'"'
        if self._lookup is None:
            return (Outcome.NO_DATABASE, b"", token, spelt)
        try:
            record = self._lookup(text if subject is address else str(subject))
        except ValueError:  # an IPv6 address in an IPv4-only database
            record = None
        location = location_json(record)
        if location is None:
            return (Outcome.UNKNOWN_ADDRESS, b"", token, spelt)
        # One copy of each place, however many clients it has: a full memory holds ~17 MB (65,536 IPv4
        # clients, measured with tracemalloc).
        return (Outcome.LOCATED, self._places.setdefault(location, location), token, spelt)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address can name a client on the internet, the only kind a database can place."""
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified or address.is_loopback
    )


def anonymized(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The address as Application Insights stored it: IPv4 with its last octet zeroed, IPv6 with its
    last 80 bits zeroed (an IPv4-mapped IPv6 address keeps its form, its IPv4 part anonymised), in the
    canonical text form (RFC 5952, as `str` of ipaddress gives it)."""
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(address) & ~0xFF))
    mapped = address.ipv4_mapped
    if mapped is not None:
        return "::ffff:" + str(ipaddress.IPv4Address(int(mapped) & ~0xFF))
    # The first 48 bits stay: three hextets, then five or more zero ones, the longest run of zeros,
    # which RFC 5952 writes `::` (ipaddress's `str` builds the same text several times slower).
    number = int(address) >> 80
    hextets = [number >> 32, (number >> 16) & 0xFFFF, number & 0xFFFF]
    while hextets and not hextets[-1]:
        hextets.pop()
    return ":".join(f"{hextet:x}" for hextet in hextets) + "::"


def location_json(record: object) -> bytes | None:
    """The location object of a database record, with only the fields the record has (None: none):
    `continent` (English name), `country` (`isoCode`, `name`), `province` (the first subdivision's
    English name) and `city` (English name). maxminddb gives records as dicts and lists."""
    if not isinstance(record, dict):
        return None
    place: dict[str, Any] = {}
    continent = _english(record.get("continent"))
    if continent:
        place["continent"] = continent
    country = record.get("country")
    if isinstance(country, dict):
        code = country.get("iso_code")
        name = _english(country)
        facets = {"isoCode": code} if isinstance(code, str) and code else {}
        if name:
            facets["name"] = name
        if facets:
            place["country"] = facets
    subdivisions = record.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions:
        province = _english(subdivisions[0])
        if province:
            place["province"] = province
    city = _english(record.get("city"))
    if city:
        place["city"] = city
    return orjson.dumps(place) if place else None


def _english(entry: object) -> str | None:
    if isinstance(entry, dict):
        names = entry.get("names")
        if isinstance(names, dict):
            name = names.get("en")
            if isinstance(name, str) and name:
                return name
    return None


# -- enriching lines ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """An option worked out once: its path, the member's bytes up to the location object, and how to
    find the address's member in the raw bytes."""

    tokens: tuple[str, ...]
    first: str  # tokens[0]
    rest: tuple[str, ...]  # tokens[1:]
    key: str
    member: bytes  # ,"<key>":
    quoted_key: bytes  # "<key>" as a line without escapes spells it
    quoted_first: bytes  # "<first token>"
    quoted_last: bytes | None  # "<last token>", None for an array index
    anonymize: bool
    # `"<last token>" : "<value>"` spelt plainly, the value captured; None when the last token is an
    # array index. Found by a literal-prefixed regex: several times faster than bytes.find on bodies
    # full of quotes and digits (measured on bench.common's bodies).
    named_value: re.Pattern[bytes] | None
    prefix: re.Pattern[bytes] | None  # see enrich_lines


_plans: dict[LocationOption, _Plan] = {}
_parsers = threading.local()


def _plan(option: LocationOption) -> _Plan:
    plan = _plans.get(option)
    if plan is None:
        if len(_plans) >= 1024:
            _plans.clear()
        tokens = pointer_tokens(option.ip_field)
        last = tokens[-1]
        named_value = re.compile(
            re.escape(orjson.dumps(last)) + rb"[ \t\r\n]*:[ \t\r\n]*\"([0-9A-Fa-f.:]*)\""
        )
        plan = _plans[option] = _Plan(
            tokens,
            tokens[0],
            tokens[1:],
            member_name(option.key),
            b"," + orjson.dumps(option.key) + b":",
            orjson.dumps(option.key),
            orjson.dumps(tokens[0]),
            None if _INDEX.fullmatch(last) and len(tokens) > 1 else orjson.dumps(last),
            option.anonymize,
            None if _INDEX.fullmatch(last) else named_value,
            _prefix(tokens),
        )
    return plan


def _parser() -> Callable[[bytes], Any]:
    """This thread's simdjson parser: one parser cannot hold two documents at once."""
    parse: Callable[[bytes], Any] | None = getattr(_parsers, "parse", None)
    if parse is None:
        parse = _parsers.parse = simdjson.Parser().parse
    return parse


def enrich(line: bytes, option: LocationOption, locator: Locator) -> tuple[bytes, Outcome]:
    """One signal line with the location of its client added (and its address anonymised), or the
    line itself with the reason it was left as sent."""
    return _enrich(line, _plan(option), locator, _parser())


def enrich_lines(
    lines: Sequence[Line], option: LocationOption, locator: Locator, *, signals: bool = False
) -> tuple[list[Line], Counter[Outcome]]:
    """A list of lines enriched for one option, in the same order with the same sequence numbers
    (a line left as sent is the same tuple), and how many lines had each outcome.

    `signals`: the lines are signal lines (`shared.signals.SignalReader` made them, so each is a JSON
    text a reader accepted): the shortcut takes that as proven instead of parsing them again.

    The shortcut, for the usual signal, is inline (this loop is the export path's cost per enriched
    signal). The usual signal has no backslash, so every name in it is spelt plainly, and the members
    before the address (on each level of its path) are strings, numbers, booleans or null. In valid
    JSON, `plan.prefix` matching from the line's first byte proves that the member it ends on is the
    first of its name on its level (what `_resolve` reads), and gives the address's span: no name
    search, no second look. The target key is checked absent from the raw line (or, for a long line
    parsed here, from its top-level names, which then cost less than a search), and the client is one
    the locator located. Any other line goes to `_enrich`, which handles every case; both give the
    same result for the lines the shortcut takes (tests/unit/test_location*.py run both)."""
    plan = _plan(option)
    parse = _parser()
    check = None if signals else parse
    match = plan.prefix.match if plan.prefix is not None else _no_match
    located_get, spelt = locator.located.get, locator.spelt
    quoted_key, member, anonymize = plan.quoted_key, plan.member, plan.anonymize
    counts: Counter[Outcome] = Counter()
    located = 0
    enriched: list[Line] = []
    append = enriched.append
    for item in lines:
        line = item[1]
        if _BACKSLASH not in line and line[-1:] == b"}":
            found = match(line)
            if found is not None and (
                line.rfind(quoted_key) < 0  # `in` searches forwards: slower on JSON (measured)
                if check is None
                else _valid_without(line, plan, check)
            ):
                address = found[1]
                place = located_get(address) or spelt(address)
                if place is not None:
                    located += 1
                    if anonymize and place[0] is not None:
                        start = found.start(1) - 1  # the address's token, quotes included
                        stop = start + len(address) + 2
                        data = b"".join((line[:start], place[0], line[stop:-1], member, place[1], b"}"))
                    else:
                        data = b"".join((line[:-1], member, place[1], b"}"))
                    append((item[0], data))
                    continue
        data, outcome = _enrich(line, plan, locator, parse)
        counts[outcome] += 1
        append(item if data is line else (item[0], data))
    if located:
        counts[_LOCATED] += located
    return enriched, counts


def _no_match(line: bytes) -> re.Match[bytes] | None:
    """The shortcut's regex for a path that a line without escapes cannot spell: no line matches."""
    return None


def _valid_without(line: bytes, plan: _Plan, parse: Callable[[bytes], Any]) -> bool:
    """Whether a line of unknown origin is a JSON object without the target key (one parse)."""
    try:
        document = parse(line)
    except (ValueError, TypeError):
        return False
    try:
        if not isinstance(document, _OBJECT):
            return False
        # Short lines: a raw search beats listing the names; long ones: the other way round.
        if len(line) <= _SHORT:
            return plan.quoted_key not in line
        return plan.key not in set(document.keys())
    finally:
        del document  # simdjson refuses to parse again while a document is alive


def _prefix(tokens: tuple[str, ...]) -> re.Pattern[bytes] | None:
    """The regex of `enrich_lines`' shortcut: from the line's start, through members with scalar
    values, to the first member of each name on the path, to an address-like string. None when a name
    needs escapes (never in a line without backslashes). Possessive quantifiers: no backtracking,
    linear in the prefix."""
    pattern = rb"[ \t\r\n]*+\{"
    for index, token in enumerate(tokens):
        name = orjson.dumps(token)
        if b"\\" in name:
            return None
        other = rb'[ \t\r\n]*+"(?!' + re.escape(name[1:-1]) + rb'")[^"\\]*+"[ \t\r\n]*+:[ \t\r\n]*+'
        scalar = rb'(?:"[^"\\]*+"|[^,{}\[\]"\s]++)[ \t\r\n]*+,'
        pattern += (
            rb"(?:" + other + scalar + rb")*+[ \t\r\n]*+" + re.escape(name) + rb"[ \t\r\n]*+:[ \t\r\n]*+"
        )
        pattern += rb"\{" if index < len(tokens) - 1 else rb'"([0-9A-Fa-f.:]{1,45})"'
    return re.compile(pattern)


def comparison(option: LocationOption | None) -> Callable[[bytes, bytes], bool] | None:
    """How delivery knows a line of an export's in its files: byte equality (None) unless the export
    is enriched, whose lines a second delivery may write differently (`same_signal`)."""
    return same_signal(option) if option is not None else None


@functools.lru_cache(maxsize=1024)  # every write of an enriched export asks
def same_signal(option: LocationOption) -> Callable[[bytes, bytes], bool]:
    """Whether two lines are the same signal, enriched alike or by two versions of the database: a
    second delivery after the database was replaced may write a signal's location differently, and
    delivery must still know the signal (shared.delivery matches lines in order, one place each, so
    this equality only has to tell a signal from another at the same place). Equal, or equal once the
    member this option adds (always the object's last) is taken off."""
    marker = b'"' + member_name(option.key).encode() + b'":{'

    def without(line: bytes) -> bytes:
        at = line.rfind(marker)
        if at <= 0 or not line.endswith(b"}}"):
            return line
        head = line[:at]
        return (head[:-1] if head.endswith(b",") else head) + b"}"

    def same(a: bytes, b: bytes) -> bool:
        return a == b or without(a) == without(b)

    return same


class Enrichments:
    """One batch's enrichments: the same list of lines enriched for the same option once, however
    many exports take it (a project's exports share lists of lines; see shared.pipeline). The lines
    are signal lines, as `SignalReader.group` makes them (`enrich_lines`' `signals`)."""

    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self._done: dict[tuple[int, LocationOption], tuple[Sequence[Line], list[Line], Counter[Outcome]]] = {}

    def __call__(self, lines: Sequence[Line], option: LocationOption) -> tuple[list[Line], Counter[Outcome]]:
        key = (id(lines), option)
        done = self._done.get(key)
        if done is not None and done[0] is lines:
            return done[1], done[2]
        enriched, counts = enrich_lines(lines, option, self.locator, signals=True)
        self._done[key] = (lines, enriched, counts)  # keeps `lines` alive: its id stays its own
        return enriched, counts


_MISSING: Final = object()


_LOCATED: Final = Outcome.LOCATED
_MISSING_FIELD: Final = Outcome.MISSING_FIELD
_NOT_A_STRING: Final = Outcome.NOT_A_STRING
_KEY_PRESENT: Final = Outcome.KEY_PRESENT
_NOT_AN_OBJECT: Final = Outcome.NOT_AN_OBJECT


def _enrich(
    line: bytes, plan: _Plan, locator: Locator, parse: Callable[[bytes], Any]
) -> tuple[bytes, Outcome]:
    """Any line, any case: one parse, the names, the address's outcome, its token's span when
    anonymising (`_span`), one join."""
    try:
        document = parse(line)
    except (ValueError, TypeError):  # UnicodeDecodeError included
        return line, _NOT_AN_OBJECT
    # A short line without a backslash spells every name plainly, so a name it does not contain is
    # not a member of it: a search of a few hundred bytes settles that for a tenth of what pysimdjson
    # takes to say a name is missing (an exception inside: ~2.5 us) or to list the top-level names.
    plain = len(line) <= _SHORT and _BACKSLASH not in line
    try:
        if not isinstance(document, _OBJECT):
            return line, _NOT_AN_OBJECT
        if plain and plan.quoted_key not in line:
            if plan.quoted_first not in line:
                return line, _MISSING_FIELD
            found: object = document.get(plan.first, _MISSING)
        else:
            names = set(document.keys())
            if plan.key in names:
                return line, _KEY_PRESENT
            if plan.first not in names:
                return line, _MISSING_FIELD
            found = document.get(plan.first)
        if plan.rest:
            found = _resolve(found, plan.rest)
        value = found if type(found) is str else None
        missing = found is _MISSING
        del found  # an Object or Array found there holds the document
    finally:
        del document  # simdjson refuses to parse again while a document is alive
    if value is None:
        return line, _MISSING_FIELD if missing else _NOT_A_STRING
    outcome, location, replacement, _ = locator.address(value)
    anonymize = plan.anonymize and replacement is not None
    if not (location or anonymize):
        return line, outcome  # not public, invalid, or nothing to add and nothing to hide
    end = len(line) - 1
    if line[end] != 0x7D:  # }
        end = line.rindex(b"}")  # whitespace after the object
    member = plan.member + location if location else b""
    if anonymize:
        assert replacement is not None
        span = (_plain_span(line, value, plan) if plain else None) or _span(
            line, value, replacement, plan, parse
        )
        if span is None:
            # Cannot happen for a body simdjson accepted (tests/unit/test_location.py checks it on
            # generated bodies): kept as sent rather than half enriched.
            return line, _MISSING_FIELD
        start, stop = span
        return b"".join((line[:start], replacement, line[stop:end], member, line[end:])), outcome
    return b"".join((line[:end], member, line[end:])), outcome


def _resolve(node: Any, tokens: tuple[str, ...]) -> object:
    """The value that reference tokens name under a parsed node, or _MISSING. Of duplicate names the
    first counts (as simdjson's `get` and `_walk` both take it); an array takes a decimal index
    without leading zeros (RFC 6901: `-`, past the end, names nothing)."""
    for token in tokens:
        if isinstance(node, _OBJECT):
            node = node.get(token, _MISSING)
            if node is _MISSING:
                return _MISSING
        elif isinstance(node, _ARRAY):
            if not _INDEX.fullmatch(token):
                return _MISSING
            index = int(token)
            if index >= len(node):
                return _MISSING
            node = node[index]
        else:
            return _MISSING
    return node


# -- where the address's token is in the line -----------------------------------------------------


def _span(
    line: bytes, value: str, replacement: bytes, plan: _Plan, parse: Callable[[bytes], Any]
) -> tuple[int, int] | None:
    """The byte span of the string token at the pointer, whose value is `value` (an address: only hex
    digits, '.' and ':', so its plain spelling needs no escape).

    Candidates are the value's plain tokens: after the last token's plain name and a colon, or, when
    the last token is an array index, anywhere as a value (a quote not escaped, not followed by ':';
    in valid JSON an address cannot follow a closing quote, so that quote opens the token). Without a
    backslash in the line no string is escaped, so the pointer's token is among them, and a single
    candidate is it. Otherwise a candidate is confirmed by replacing it and reading the pointer again;
    a token spelt with escapes is found by walking the path through the raw bytes.
    """
    plain = value.encode()
    escapes = _BACKSLASH in line
    candidates: list[int] = []
    pattern = plan.named_value
    if pattern is not None:
        match = pattern.search(line)
        while match is not None and len(candidates) <= _MAX_CANDIDATES:
            if match.group(1) == plain and not (escapes and _escaped(line, match.start())):
                candidates.append(match.start(1) - 1)
            match = pattern.search(line, match.end())
    else:
        quoted = b'"' + plain + b'"'
        at = line.find(quoted)
        while at >= 0 and len(candidates) <= _MAX_CANDIDATES:
            if not (escapes and _escaped(line, at)) and not _is_key(line, at + len(quoted)):
                candidates.append(at)
            at = line.find(quoted, at + 1)
    size = len(plain) + 2
    if len(candidates) == 1 and not escapes:
        return candidates[0], candidates[0] + size
    for at in candidates[:_MAX_CANDIDATES]:
        if _names(line[:at] + replacement + line[at + size :], plan, replacement, parse):
            return at, at + size
    return _walk(line, plan.tokens)


_MAX_CANDIDATES = 8  # tried by parsing again; past that the raw bytes are walked
_SHORT = 2048  # bytes: below, searching the raw line beats asking pysimdjson (measured: bench.location)


def _plain_span(line: bytes, value: str, plan: _Plan) -> tuple[int, int] | None:
    """The span in a line without escapes whose last pointer name occurs once: the value after it.
    None when the name occurs more than once (or is an array index): `_span` decides then."""
    name = plan.quoted_last
    if name is None:
        return None
    at = line.find(name)
    if at < 0 or line.rfind(name) != at:
        return None
    size = len(line)
    at += len(name)
    while at < size and line[at] in _WHITESPACE:
        at += 1
    if at >= size or line[at] != _COLON:
        return None
    at += 1
    while at < size and line[at] in _WHITESPACE:
        at += 1
    token = b'"' + value.encode() + b'"'
    return (at, at + len(token)) if line.startswith(token, at) else None


def _escaped(line: bytes, at: int) -> bool:
    """Whether the quote at `at` is escaped: preceded by an odd run of backslashes."""
    start = at
    while start > 0 and line[start - 1] == _BACKSLASH:
        start -= 1
    return (at - start) % 2 == 1


def _is_key(line: bytes, after: int) -> bool:
    """Whether the string token ending before `after` is a member name (followed by ':')."""
    size = len(line)
    while after < size and line[after] in _WHITESPACE:
        after += 1
    return after < size and line[after] == _COLON


def _names(trial: bytes, plan: _Plan, replacement: bytes, parse: Callable[[bytes], Any]) -> bool:
    """Whether the pointer names the replacement in the trial line (so the replaced token was its)."""
    try:
        document = parse(trial)
    except ValueError:
        return False
    try:
        found = _resolve(document, plan.tokens)
        named = type(found) is str and found == replacement[1:-1].decode()
        del found
    finally:
        del document
    return named


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SKIP_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_STRUCTURE = re.compile(rb'["\[\]{}]')
_SCALAR = re.compile(rb"[^,\]} \t\r\n]*")


def _walk(line: bytes, tokens: tuple[str, ...]) -> tuple[int, int] | None:
    """The span of the string token at the pointer, found by walking the raw bytes of a valid JSON
    text (the slow way: only for a value spelt with escapes). None when the pointer names nothing or
    not a string."""
    try:
        at = _space(line, 0)
        for token in tokens:
            opener = line[at]
            if opener == 0x7B:  # {
                at = _member(line, at, token)
            elif opener == 0x5B:  # [
                at = _element(line, at, token)
            else:
                return None
            if at < 0:
                return None
        match = _STRING.match(line, at)
        return (at, match.end()) if match else None
    except (IndexError, ValueError, AttributeError):
        return None


def _space(line: bytes, at: int) -> int:
    match = _SKIP_WHITESPACE.match(line, at)
    assert match is not None  # matches the empty string
    return match.end()


def _member(line: bytes, at: int, token: str) -> int:
    """Where the value of the object's first member named `token` starts (-1: none)."""
    at = _space(line, at + 1)
    if line[at] == 0x7D:  # }
        return -1
    while True:
        key = _STRING.match(line, at)
        if key is None:
            return -1
        raw = key.group()
        name = json.loads(raw) if _BACKSLASH in raw else raw[1:-1].decode()
        at = _space(line, key.end())
        if line[at] != _COLON:
            return -1
        at = _space(line, at + 1)
        if name == token:
            return at
        at = _space(line, _skip(line, at))
        if line[at] != 0x2C:  # ,
            return -1
        at = _space(line, at + 1)


def _element(line: bytes, at: int, token: str) -> int:
    """Where the array's element at index `token` starts (-1: none)."""
    if not _INDEX.fullmatch(token):
        return -1
    index = int(token)
    at = _space(line, at + 1)
    if line[at] == 0x5D:  # ]
        return -1
    while index:
        at = _space(line, _skip(line, at))
        if line[at] != 0x2C:  # ,
            return -1
        at = _space(line, at + 1)
        index -= 1
    return at


def _skip(line: bytes, at: int) -> int:
    """Where the value starting at `at` ends."""
    opener = line[at]
    if opener == 0x22:  # "
        match = _STRING.match(line, at)
        if match is None:
            raise ValueError("unterminated string")
        return match.end()
    if opener not in b"{[":
        scalar = _SCALAR.match(line, at)
        assert scalar is not None  # matches the empty string
        return scalar.end()
    depth = 0
    while True:
        mark = _STRUCTURE.search(line, at)
        if mark is None:
            raise ValueError("unterminated value")
        at = mark.start()
        char = line[at]
        if char == 0x22:
            at = _skip(line, at)
            continue
        depth += 1 if char in b"{[" else -1
        at += 1
        if depth == 0:
            return at
