"""The signal contract: what is a signal, what is rejected and why, and the exported line.

The property tests compare the reader's verdict on generated JSON documents, mutations of them and
arbitrary bytes with `tests.unit.rfc8259`, a reference written from RFC 8259 alone. Their budget is the
hypothesis profile's (tests/conftest.py: `ci` by default; `HYPOTHESIS_PROFILE=fuzz` for a long run).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared import jsontext
from shared.signals import (
    MAX_DEPTH,
    MAX_SIGNAL_BYTES,
    IncomingEvent,
    Rejection,
    RejectReason,
    Signal,
    SignalReader,
    one_line,
)
from tests.unit.rfc8259 import Verdict, judge

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MINUTE = int(AT.timestamp()) // 60


def read(body: bytes, project: str | None = "p1") -> Signal | Rejection:
    return SignalReader().read(IncomingEvent(body, 7, AT, project))


def test_a_json_object_with_a_name_is_a_signal_exported_byte_for_byte() -> None:
    """A valid body is read as its name and its own bytes, not a copy."""
    body = b'{"name":"click","value":1.50,"nested":{"a":[1,2]}}'
    result = read(body)
    assert result == ("click", body)
    assert isinstance(result, tuple) and result[1] is body


def test_a_body_on_several_lines_is_compacted_to_one_with_the_same_value() -> None:
    """Pretty-printed JSON becomes one line whose JSON value is unchanged."""
    document = {"name": "view", "text": "a \\n b\tc", "list": [1, {"x": None}], "flag": True}
    body = json.dumps(document, indent=2).encode()
    result = read(body.replace(b"\n", b"\r\n"))
    assert not isinstance(result, Rejection)
    _, line = result
    assert b"\n" not in line and b"\r" not in line
    assert json.loads(line) == document


WORDS = {
    RejectReason.NOT_UTF8: "not valid UTF-8",
    RejectReason.NOT_JSON: "not JSON",
    RejectReason.NOT_OBJECT: "JSON but not an object",
    RejectReason.MISSING_NAME: "string field 'name'",
    RejectReason.INVALID_NAME: "'name' holds a lone surrogate",
    RejectReason.MISSING_PROJECT: "'projectId' is missing",
    RejectReason.TOO_LARGE: f"over {MAX_SIGNAL_BYTES}",
}


@pytest.mark.parametrize(
    ("body", "project", "reason"),
    [
        (b'{"name":"a\xff"}', "p1", RejectReason.NOT_UTF8),
        (b'{"name":"\xed\xa0\x80"}', "p1", RejectReason.NOT_UTF8),  # a surrogate encoded in UTF-8
        (b'{"name": "x"', "p1", RejectReason.NOT_JSON),
        (b"", "p1", RejectReason.NOT_JSON),
        (b'{"name":"a"} {"name":"b"}', "p1", RejectReason.NOT_JSON),
        (b'{"name":"a","n":NaN}', "p1", RejectReason.NOT_JSON),
        (b'{"name":"a","n":1e400,"m":-Infinity}', "p1", RejectReason.NOT_JSON),  # read by the fallback
        (b'{"name":"a","n":01}', "p1", RejectReason.NOT_JSON),
        (b'{"name":"a","s":"\\x41"}', "p1", RejectReason.NOT_JSON),
        (b'{"name":"a","s":"\\ud800\x01"}', "p1", RejectReason.NOT_JSON),  # a raw control character
        (b'{"name":"a"}\x0c', "p1", RejectReason.NOT_JSON),  # form feed is no JSON whitespace
        (b'["name"]', "p1", RejectReason.NOT_OBJECT),
        (b'"click"', "p1", RejectReason.NOT_OBJECT),
        (b"[18446744073709551616]", "p1", RejectReason.NOT_OBJECT),
        (b'{"value":1}', "p1", RejectReason.MISSING_NAME),
        (b'{"name":5}', "p1", RejectReason.MISSING_NAME),
        (b'{"value":1e400}', "p1", RejectReason.MISSING_NAME),  # judged by the fallback reader
        (b'{"name":""}', "p1", RejectReason.MISSING_NAME),
        (b'{"name":"x"}', None, RejectReason.MISSING_PROJECT),
        (b'{"name":"\\ud800"}', "p1", RejectReason.INVALID_NAME),
        (b'{"name":"a\\udfff b","n":1}', "p1", RejectReason.INVALID_NAME),
        (b'{"name":"click"}', None, RejectReason.MISSING_PROJECT),
        (b'{"name":"click"}', "", RejectReason.MISSING_PROJECT),
        (b'{"name":"x","pad":"' + b"a" * MAX_SIGNAL_BYTES + b'"}', "p1", RejectReason.TOO_LARGE),
    ],
)
def test_bodies_that_are_not_signals_are_rejected_with_a_reason(
    body: bytes, project: str | None, reason: RejectReason
) -> None:
    """Each kind of bad input is rejected with its own reason and a few words for the dead letter,
    keeping the event whole; the batch path (group) rejects it for the same reason."""
    result = read(body, project)
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert result.event.body == body
    assert WORDS[reason] in result.detail, "the dead letter says what is wrong in words"
    groups, rejections = SignalReader().group([IncomingEvent(body, 7, AT, project)])
    assert groups == {}
    assert [r.reason for r in rejections] == [reason]


@pytest.mark.parametrize(
    "body",
    [
        b'{"name":"b","n":-9223372036854775809}',  # below -2^63: simdjson raised RuntimeError
        b'{"name":"b","n":18446744073709551616}',  # 2^64
        b'{"name":"b","n":1e400,"m":-1E+400,"k":1.5e-99999}',  # beyond the double range
        b'{"name":"b","s":"\\ud800","t":"\\udc00\\ud83d"}',  # lone surrogates, as JSON.stringify writes
        b'{"name":"b","n":' + b"9" * 5000 + b"}",  # beyond Python's int conversion limit too
        b'{"name":"b","deep":' + b"[" * 1022 + b"1" + b"]" * 1022 + b"}",  # a value inside 1,023
        b'{"name":"b","deep":' + b'{"a":' * 1021 + b"[]" + b"}" * 1021 + b"}",  # ... and the bottom
        b'{"name":"b","n":1e400,"deep":' + b"[" * 1022 + b"1" + b"]" * 1022 + b"}",  # both at once
    ],
)
def test_valid_json_that_simdjson_refuses_is_exported_verbatim(body: bytes) -> None:
    """RFC 8259 sets no limit on numbers and allows any \\u escape: such a body is its own line."""
    assert read(body) == ("b", body)
    assert SignalReader().group([IncomingEvent(body, 7, AT, "p1")]) == (
        {("p1", "b", MINUTE): [(7, body)]},
        [],
    )


@pytest.mark.parametrize(
    "body",
    [
        b"[" * (MAX_DEPTH + 1) + b"1" + b"]" * (MAX_DEPTH + 1),
        b'{"name":"b","deep":' + b"[" * MAX_DEPTH + b"1" + b"]" * MAX_DEPTH + b"}",
        b'{"name":"b","deep":' + b"[" * MAX_DEPTH + b"{}" + b"]" * MAX_DEPTH + b"}",
        b'{"name":"b","n":1e400,"deep":' + b"[" * MAX_DEPTH + b"1" + b"]" * MAX_DEPTH + b"}",
        b'{"name":"b","deep":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"name":"b","deep":' + b"[" * 100_000,  # and not JSON either: too deep is met first
    ],
)
def test_a_body_nested_beyond_the_limit_is_rejected_as_too_deep(body: bytes) -> None:
    """A value inside more than 1,023 arrays and objects is dead-lettered too-deep, by either reader."""
    result = read(body)
    assert isinstance(result, Rejection) and result.reason is RejectReason.TOO_DEEP
    assert str(MAX_DEPTH) in result.detail


def test_the_first_of_duplicate_name_members_is_the_name_whichever_reader_reads_it() -> None:
    """With two top-level "name" members, the first counts, on simdjson's path and on the fallback."""
    fast = b'{"name":"first","x":1,"name":"second"}'
    slow = b'{"name":"first","x":1e400,"name":"second"}'  # simdjson refuses it
    escaped = b'{"na\\u006de":"first","name":"second","n":18446744073709551616}'
    for body in (fast, slow, escaped):
        assert read(body) == ("first", body)
        assert SignalReader().group([IncomingEvent(body, 1, AT, "p1")])[0] == {
            ("p1", "first", MINUTE): [(1, body)]
        }
    refused = read(b'{"name":5,"name":"second","n":1e400}')
    assert isinstance(refused, Rejection) and refused.reason is RejectReason.MISSING_NAME


def test_a_byte_order_mark_is_read_past_and_left_out_of_the_line() -> None:
    """RFC 8259 lets a parser ignore a leading BOM; a line that kept one would break the file's readers."""
    for body in (b'\xef\xbb\xbf{"name":"a"}', b'\xef\xbb\xbf{"name":"a","n":1e400}'):
        assert read(body) == ("a", body[3:])
        assert SignalReader().group([IncomingEvent(body, 1, AT, "p1")])[0] == {
            ("p1", "a", MINUTE): [(1, body[3:])]
        }
    inside = read(b' \xef\xbb\xbf{"name":"a"}')
    assert isinstance(inside, Rejection) and inside.reason is RejectReason.NOT_JSON


def test_a_signal_of_exactly_one_mebibyte_is_accepted() -> None:
    """The size limit is inclusive: 1 MiB is a signal, 1 MiB + 1 byte is not."""
    head, tail = b'{"name":"big","pad":"', b'"}'
    body = head + b"a" * (MAX_SIGNAL_BYTES - len(head) - len(tail)) + tail
    assert len(body) == MAX_SIGNAL_BYTES
    assert read(body) == ("big", body)


def test_the_batch_path_takes_the_same_size_limit() -> None:
    """group(), the export's hot path, takes a signal of exactly 1 MiB and dead-letters 1 MiB + 1 byte."""
    head, tail = b'{"name":"big","pad":"', b'"}'
    exact = head + b"a" * (MAX_SIGNAL_BYTES - len(head) - len(tail)) + tail
    over = head + b"a" * (MAX_SIGNAL_BYTES - len(head) - len(tail) + 1) + tail
    groups, rejections = SignalReader().group(
        [IncomingEvent(exact, 1, AT, "p1"), IncomingEvent(over, 2, AT, "p1")]
    )
    assert groups == {("p1", "big", MINUTE): [(1, exact)]}
    assert [(r.event.sequence, r.reason) for r in rejections] == [(2, RejectReason.TOO_LARGE)]


def test_the_batch_path_puts_a_body_on_several_lines_on_one_line() -> None:
    """group(), the export's hot path, compacts a body with line feeds or carriage returns between its
    tokens: each signal stays one line of the file, with the same JSON value."""
    document = {"name": "view", "n": 1}
    bodies = [json.dumps(document, indent=2).encode(), b'{"name":"view",\r"n":1}']
    events = [IncomingEvent(body, n, AT, "p1") for n, body in enumerate(bodies)]
    groups, rejections = SignalReader().group(events)
    assert rejections == []
    lines = groups[("p1", "view", MINUTE)]
    assert [n for n, _ in lines] == [0, 1]
    for _, line in lines:
        assert b"\n" not in line and b"\r" not in line
        assert json.loads(line) == document


def test_one_reader_reads_many_bodies_in_a_row() -> None:
    """The reader's parser is reused across bodies, valid or not, including those simdjson refuses."""
    reader = SignalReader()
    bodies = [b'{"name":"a"}', b"{", b'{"name":"c","n":-9223372036854775809}', b"[" * 2000, b'{"name":"b"}']
    results = [reader.read(IncomingEvent(b, i, AT, "p")) for i, b in enumerate(bodies)]
    assert (
        results[0] == ("a", bodies[0]) and results[2] == ("c", bodies[2]) and results[4] == ("b", bodies[4])
    )
    assert isinstance(results[1], Rejection) and results[1].reason is RejectReason.NOT_JSON
    assert isinstance(results[3], Rejection) and results[3].reason is RejectReason.TOO_DEEP


def test_a_batch_with_poison_bodies_groups_every_other_signal() -> None:
    """Bodies that made the reader raise before sit between other projects' signals: the rest are grouped."""
    poison = [b'{"name":"b","n":-9223372036854775809,', b"[" * 1100 + b"]" * 1100, b"\xff" * 9]
    events = [IncomingEvent(b'{"name":"ok"}', 0, AT, "p1")]
    events += [IncomingEvent(body, i + 1, AT, "p2") for i, body in enumerate(poison)]
    events.append(IncomingEvent(b'{"name":"ok"}', 9, AT, "p3"))
    groups, rejections = SignalReader().group(events)
    assert groups == {
        ("p1", "ok", MINUTE): [(0, b'{"name":"ok"}')],
        ("p3", "ok", MINUTE): [(9, b'{"name":"ok"}')],
    }
    assert [r.reason for r in rejections] == [
        RejectReason.NOT_JSON,
        RejectReason.TOO_DEEP,
        RejectReason.NOT_UTF8,
    ]


def test_one_line_keeps_single_line_bodies_untouched() -> None:
    """A body already on one line is exported exactly as sent: not copied, not even trimmed."""
    body = b' {"name":"a","s":"x y"}\t'
    assert one_line(body) is body


# -- property tests against the reference -----------------------------------------------------------

WHITESPACE = st.text(alphabet=" \t\r\n", max_size=3)  # RFC 8259 ws, CR and LF included


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """Any number the grammar allows: huge integers, long fractions, exponents far beyond doubles."""
    whole = draw(
        st.one_of(
            st.just("0"),
            st.integers(1, 2**64 + 5).map(str),
            st.integers(2**63 - 3, 2**64 + 3).map(str),  # around the 64-bit edges
            st.integers(10**19, 10**400).map(str),
        )
    )
    fraction = draw(st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,25}", fullmatch=True)))
    exponent = draw(st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,6}", fullmatch=True)))
    return draw(st.sampled_from(["", "-"])) + whole + fraction + exponent


def _escaped_pair(point: int) -> str:
    """A code point beyond the BMP as JSON escapes it: a surrogate pair."""
    high, low = 0xD800 + ((point - 0x10000) >> 10), 0xDC00 + ((point - 0x10000) & 0x3FF)
    return f"\\u{high:04x}\\u{low:04x}"


CHARACTER = st.one_of(
    st.characters(min_codepoint=0x20, exclude_categories=("Cs",), exclude_characters='"\\'),
    st.sampled_from(['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]),
    st.integers(0, 0xFFFF).map(lambda unit: f"\\u{unit:04x}"),  # lone surrogates among them
    st.integers(0xD800, 0xDFFF).map(lambda unit: f"\\u{unit:04X}"),
    st.integers(0x10000, 0x10FFFF).map(_escaped_pair),
)
STRING = st.lists(CHARACTER, max_size=6).map(lambda chars: '"' + "".join(chars) + '"')
NAME_KEY = st.sampled_from(['"name"', '"na\\u006de"', '"\\u006e\\u0061\\u006d\\u0065"', '"Name"', '"name "'])
SCALAR = st.one_of(numbers(), STRING, st.sampled_from(["true", "false", "null"]))


def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    spaced = st.tuples(WHITESPACE, children, WHITESPACE).map("".join)
    array = st.lists(spaced, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
    member = st.tuples(WHITESPACE, STRING | NAME_KEY, WHITESPACE, st.just(":"), spaced).map("".join)
    return array | st.lists(member, max_size=4).map(lambda members: "{" + ",".join(members) + "}")


VALUE = st.recursive(SCALAR, containers, max_leaves=10)
TOP_MEMBER = st.tuples(
    WHITESPACE, NAME_KEY | STRING, WHITESPACE, st.just(":"), WHITESPACE, STRING | VALUE, WHITESPACE
).map("".join)
TOP_OBJECT = st.lists(TOP_MEMBER, max_size=5).map(lambda members: "{" + ",".join(members) + "}")


@st.composite
def deep(draw: st.DrawFn) -> str:
    """A top-level object with a member nested about MAX_DEPTH deep, arrays and objects mixed."""
    levels = draw(st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3))
    openers = draw(st.lists(st.sampled_from(["[", '{"a":', '{"name":', "[0,"]), min_size=1, max_size=3))
    bottom = draw(SCALAR | st.sampled_from(["[]", "{}", "[ ]"]))
    opened = [openers[i % len(openers)] for i in range(levels)]
    closed = ["]" if opener.startswith("[") else "}" for opener in reversed(opened)]
    first = draw(st.sampled_from(['"name":"deep",', "", '"name":1e400,']))
    return "{" + first + '"v":' + "".join(opened) + bottom + "".join(closed) + "}"


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A JSON text, maybe with a byte order mark and whitespace around."""
    document = draw(st.one_of(TOP_OBJECT, TOP_OBJECT, VALUE, deep()))
    bom = draw(st.sampled_from(["", "", "\ufeff"]))
    return (bom + draw(WHITESPACE) + document + draw(WHITESPACE)).encode()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A JSON text with a few bytes inserted, replaced or removed: mostly no longer JSON."""
    body = bytearray(draw(bodies()))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        byte = draw(st.sampled_from(b'{}[]",:\\ \r\n0e.-+tu\x00\x1f\x7f\x80\xc3\xed\xef\xff'))
        operation = draw(st.sampled_from(["insert", "replace", "delete", "cut"]))
        if operation == "insert":
            body[at:at] = bytes([byte])
        elif operation == "replace":
            body[at : at + 1] = bytes([byte])
        elif operation == "delete":
            del body[at : at + 1]
        else:
            del body[at:]
    return bytes(body)


def assert_agrees(body: bytes, expected: Verdict) -> None:
    """The reader's verdict, on both of its paths, is the reference's."""
    event = IncomingEvent(body, 3, AT, "p1")
    verdict = SignalReader().read(event)
    if isinstance(verdict, Rejection):
        assert verdict.reason.value in expected.reasons, (verdict.reason, verdict.detail, expected)
        assert verdict.event is event
    else:
        assert verdict == (expected.name, expected.line), expected
    groups, rejections = SignalReader().group([event])
    if isinstance(verdict, Rejection):
        assert (groups, [r.reason for r in rejections]) == ({}, [verdict.reason])
    else:
        assert (groups, rejections) == ({("p1", verdict[0], MINUTE): [(3, verdict[1])]}, [])


@given(bodies())
@example(b'{"name":"a","n":-9223372036854775809}')
@example(b'{"name":"\\ud83d\\ude00","t":"\\ud83d"}')
def test_generated_json_gets_the_references_verdict(body: bytes) -> None:
    """Generated JSON documents (huge numbers, escapes and surrogates, CR/LF, deep nesting, duplicate
    names, any top-level value) get the reference's verdict: the name and line, or the reason."""
    assert_agrees(body, judge(body, max_depth=MAX_DEPTH))


@given(mutated())
def test_damaged_json_gets_the_references_verdict(body: bytes) -> None:
    """JSON with bytes inserted, replaced or cut off gets the reference's verdict, and never raises."""
    assert_agrees(body, judge(body, max_depth=MAX_DEPTH))


@given(
    st.binary(max_size=64)
    | st.text(alphabet='{}[]":,0123456789.eE+-truefalsn \\u\r\n', max_size=40).map(str.encode)
)
def test_arbitrary_bytes_get_the_references_verdict(body: bytes) -> None:
    """Any bytes at all get the reference's verdict, and never raise."""
    assert_agrees(body, judge(body, max_depth=MAX_DEPTH))


@given(st.one_of(bodies(), mutated()))
def test_both_engines_of_the_fallback_reader_agree_with_the_reference(body: bytes) -> None:
    """Python's json and the token walker (for texts with many brackets) each give the reference's verdict."""
    try:
        text = body.decode().removeprefix("\ufeff")
    except UnicodeDecodeError:
        return
    expected = judge(body, max_depth=MAX_DEPTH)
    engines = [jsontext._walk]
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        engines.append(jsontext._with_json)
    for engine in engines:
        try:
            top = engine(text, "name")
        except jsontext.TooDeep:
            assert "too-deep" in expected.reasons
        except jsontext.NotJson:
            assert "not-json" in expected.reasons
        else:
            if not top.is_object:
                assert expected.reasons == {"not-object"}
            elif not top.member:
                assert expected.reasons == {"missing-name"}
            elif expected.reasons == {"invalid-name"}:
                assert any(0xD800 <= ord(c) <= 0xDFFF for c in top.member)
            else:
                assert top.member == expected.name
