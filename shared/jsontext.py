"""JSON text exactly as RFC 8259 defines it: the reader of last resort for the bodies simdjson refuses.

simdjson (the export path's reader) refuses some valid JSON text: integers below -2^63 or from 2^64 up,
numbers beyond the double range (`1e400`), escapes of lone surrogates (`"\\ud800"`, which JavaScript's
`JSON.stringify` writes), and values nested too deep. This module judges such text as the RFC does and
reads only what a signal needs: whether the top-level value is an object, and one of its members.

Two engines, one verdict. Python's `json` (C-accelerated) reads most texts; it recurses once per level,
so a text with more than `MAX_DEPTH` brackets (which may nest that deep), or one that meets this
thread's recursion limit, is read by `_walk`, a loop over tokens that keeps its own stack. Neither
builds the document: numbers are not converted, nested objects are kept as tuples of pairs.

Pure, and raises only `NotJson` and `TooDeep` (both ValueError) for any text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

MAX_DEPTH: Final = 1023
"""At most this many arrays and objects around any value. simdjson's limit (`DEFAULT_MAX_DEPTH` 1024 in
simdjson.h, which counts the document itself; an empty array or object at the bottom is a value, not
a level), so that the fast reader and this one agree on every text."""


class NotJson(ValueError):
    """The text is not JSON (RFC 8259). The message says what and where, never quotes the text."""


class TooDeep(ValueError):
    """A value sits inside more than MAX_DEPTH arrays and objects."""


@dataclass(frozen=True, slots=True)
class Top:
    """What a signal needs of a JSON text: is the top-level value an object, and the string value of
    its first member with the key asked for (None when there is no such member, or it is no string)."""

    is_object: bool
    member: str | None


def read_top(text: str, key: str) -> Top:
    """Judge `text` (a whole JSON text, already decoded from UTF-8) and read its top-level member `key`.

    A key is compared once decoded (`"na\\u006de"` is `name`). When several members share the key, the
    first one counts (as simdjson's lookup, so that both readers agree)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # cannot nest deeper than its brackets
        try:
            return _with_json(text, key)
        except RecursionError:  # the caller's stack left json too little room: no verdict yet
            pass
    return _walk(text, key)


def _ignore(literal: str) -> None:
    """Numbers are valid as the RFC writes them, whatever their size: not converted (a conversion
    would refuse integers of more than 4,300 digits, and costs time for nothing)."""


def _refuse(constant: str) -> None:
    """Python's json reads NaN, Infinity and -Infinity; RFC 8259 has no such values."""
    raise NotJson(f"{constant} is not a JSON value")


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=tuple, parse_float=_ignore, parse_int=_ignore, parse_constant=_refuse, strict=True
)


def _with_json(text: str, key: str) -> Top:
    try:
        top = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise NotJson(f"{error.msg} at character {error.pos}") from None
    if not isinstance(top, tuple):  # objects are tuples of pairs; arrays are lists
        return Top(False, None)
    for member_key, value in top:
        if member_key == key:
            return Top(True, value if isinstance(value, str) else None)
    return Top(True, None)


# One token after optional whitespace (RFC 8259 section 2: space, tab, LF, CR). Strings as section 7
# writes them; possessive quantifiers, so an unterminated string costs one pass, not a backtrack.
_TOKEN: Final = re.compile(
    r"[ \t\n\r]*+(?:"
    r"(?P<open>[\[{])|(?P<close>[\]}])|(?P<comma>,)|(?P<colon>:)"
    r'|(?P<string>"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+")'
    r"|(?P<scalar>-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?|true|false|null)"
    r")"
)
_REST_IS_WHITESPACE: Final = re.compile(r"[ \t\n\r]*+")


def _string(token: re.Match[str]) -> str:
    """A string token's value (already checked by the token's pattern)."""
    value: str = _DECODER.decode(token.group("string"))
    return value


# What may come next.
_VALUE, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE, _COLON, _AFTER = range(6)


def _walk(text: str, key: str) -> Top:
    """The grammar of RFC 8259 over tokens, with an explicit stack: any depth, one pass."""
    walker = _Walker(key)
    position = 0
    while True:
        token = _TOKEN.match(text, position)
        if token is None:
            where = _REST_IS_WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
            what = "text ends early" if where == len(text) else "unexpected character"
            raise NotJson(f"{what} at character {where}")
        position = token.end()
        walker.step(token, text[position - 1])
        if walker.expect == _AFTER and not walker.closers:
            rest = _REST_IS_WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
            if rest != len(text):
                raise NotJson(f"extra data at character {rest}")
            return Top(walker.is_object, walker.member)


class _Walker:
    """Where `_walk` stands: what may come next, the open containers, and the member it looks for."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.closers: list[str] = []  # the closing bracket each open container waits for
        self.expect = _VALUE
        self.is_object = False
        self.member: str | None = None
        self.found = self.capturing = False  # the first top-level `key` seen; its value is next

    def step(self, token: re.Match[str], last: str) -> None:
        """Take one token (`last`: its last character, the bracket of an open or a close)."""
        kind = token.lastgroup
        if self.expect in (_VALUE, _VALUE_OR_CLOSE):
            self._value(token, kind, last)
        elif self.expect in (_KEY, _KEY_OR_CLOSE):
            self._key(token, kind, last)
        elif self.expect == _COLON:
            if kind != "colon":
                raise NotJson(f"':' was expected at character {token.start(kind or 0)}")
            self.expect = _VALUE
        elif kind == "comma" and self.closers:
            self.expect = _KEY if self.closers[-1] == "}" else _VALUE
        elif kind == "close" and self.closers and last == self.closers[-1]:
            self.closers.pop()
        else:
            raise NotJson(
                f"',' or the end of the array or object was expected at character {token.start(kind or 0)}"
            )

    def _value(self, token: re.Match[str], kind: str | None, last: str) -> None:
        if kind == "close" and self.expect == _VALUE_OR_CLOSE and last == "]":
            self.closers.pop()
            self.expect = _AFTER
            return
        if kind not in ("open", "string", "scalar"):
            raise NotJson(f"a value was expected at character {token.start(kind or 0)}")
        if len(self.closers) > MAX_DEPTH:
            raise TooDeep(f"a value sits inside more than {MAX_DEPTH} arrays and objects")
        if self.capturing and kind == "string":
            self.member = _string(token)
        self.capturing = False
        if kind != "open":
            self.expect = _AFTER
            return
        if not self.closers:
            self.is_object = last == "{"
        self.closers.append("}" if last == "{" else "]")
        self.expect = _KEY_OR_CLOSE if last == "{" else _VALUE_OR_CLOSE

    def _key(self, token: re.Match[str], kind: str | None, last: str) -> None:
        if kind == "string":
            if len(self.closers) == 1 and not self.found:
                self.found = self.capturing = _string(token) == self.key
            self.expect = _COLON
        elif kind == "close" and self.expect == _KEY_OR_CLOSE and last == "}":
            self.closers.pop()
            self.expect = _AFTER
        else:
            raise NotJson(f"a member's key was expected at character {token.start(kind or 0)}")
