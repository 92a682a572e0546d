"""An independent reference for the signal contract: RFC 8259's grammar, one code point at a time.

Written from the RFC's ABNF (sections 2 to 7, and 8.1 for the encoding and the byte order mark), using
no JSON library, so that it shares no code and no shortcut with `shared.signals` or the modules it
uses. Slow and plain on purpose: it judges the small documents that the property tests generate.
An explicit stack instead of recursion, so that it can read documents nested beyond any limit.
"""

from __future__ import annotations

from dataclasses import dataclass

WHITESPACE = " \t\n\r"  # ws = *( %x20 / %x09 / %x0A / %x0D )
ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
HEX = "0123456789abcdefABCDEF"
DIGITS = "0123456789"


@dataclass(frozen=True)
class Verdict:
    """What the contract says of a body: the reasons it may be rejected with (more than one only when
    a body is both too deep and not JSON), or the signal's name and exported line."""

    reasons: frozenset[str] = frozenset()
    name: str | None = None
    line: bytes | None = None


class _Invalid(Exception):
    pass


def judge(body: bytes, *, max_depth: int) -> Verdict:
    """The verdict the signal contract (README, "The signal contract") gives a body with a project."""
    try:
        text = body.decode("utf-8")  # RFC 8259 8.1: UTF-8; Python's decoder refuses surrogates too
    except UnicodeDecodeError:
        return Verdict(frozenset({"not-utf8"}))
    bom = text.startswith("\ufeff")  # 8.1: a parser MAY ignore a byte order mark
    parser = _Parser(text[1:] if bom else text)
    try:
        top = parser.json_text()
    except _Invalid:
        deep = parser.deepest > max_depth
        return Verdict(frozenset({"not-json", "too-deep"} if deep else {"not-json"}))
    if parser.deepest > max_depth:
        return Verdict(frozenset({"too-deep"}))
    if not isinstance(top, list):
        return Verdict(frozenset({"not-object"}))
    names = [value for key, value in top if key == "name"]
    name = names[0] if names else None  # the first member called "name"
    if not isinstance(name, str) or not name:
        return Verdict(frozenset({"missing-name"}))
    if any(0xD800 <= ord(char) <= 0xDFFF for char in name):
        return Verdict(frozenset({"invalid-name"}))
    line = body[3:] if bom else body
    return Verdict(name=name, line=line.replace(b"\r", b"").replace(b"\n", b""))


class _Object:
    pass


class _Array:
    pass


class _Parser:
    """A pushdown reader of JSON-text. The top-level object's members are kept as (key, value) pairs,
    with a value of None unless it is a string; nothing else is kept."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.deepest = 0

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        if not char:
            raise _Invalid
        self.at += 1
        return char

    def ws(self) -> None:
        while self.peek() and self.peek() in WHITESPACE:
            self.at += 1

    def json_text(self) -> object:
        """JSON-text = ws value ws, and nothing after."""
        self.ws()
        top = self.value()
        self.ws()
        if self.at != len(self.text):
            raise _Invalid
        return top

    def value(self) -> object:
        """value = false / null / true / object / array / number / string. Containers are read with
        an explicit stack: (kind, members of the top-level object or None, expecting)."""
        char = self.peek()
        if char not in "[{":
            return self.scalar()
        stack: list[tuple[type, list[tuple[str, object]] | None]] = []
        result: object = None
        while True:
            # Here a value is expected, inside len(stack) containers: open one or read a scalar.
            self.deepest = max(self.deepest, len(stack))
            char = self.peek()
            if char in "[{":
                self.take()
                kind = _Array if char == "[" else _Object
                stack.append((kind, [] if not stack and kind is _Object else None))
                self.ws()
                closing = "]" if kind is _Array else "}"
                if self.peek() == closing:
                    self.take()
                    finished = stack.pop()
                    result = finished[1] if finished[1] is not None else _Array()
                else:
                    if kind is _Object:
                        self.member_key(stack)
                    continue
            else:
                result = self.scalar()
            # A value ended: record it, then a separator or the container's end.
            while True:
                if not stack:
                    return result
                kind, members = stack[-1]
                if members is not None and len(stack) == 1:
                    members[-1] = (members[-1][0], result if isinstance(result, str) else None)
                self.ws()
                char = self.take()
                if char == ",":
                    self.ws()
                    if kind is _Object:
                        self.member_key(stack)
                    break
                if char != ("]" if kind is _Array else "}"):
                    raise _Invalid
                finished = stack.pop()
                result = finished[1] if finished[1] is not None else kind()

    def member_key(self, stack: list[tuple[type, list[tuple[str, object]] | None]]) -> None:
        """member = string name-separator value: reads the key and the separator."""
        if self.peek() != '"':
            raise _Invalid
        key = self.string()
        self.ws()
        if self.take() != ":":
            raise _Invalid
        self.ws()
        members = stack[-1][1]
        if members is not None and len(stack) == 1:
            members.append((key, None))

    def scalar(self) -> object:
        char = self.peek()
        if char == '"':
            return self.string()
        for literal in ("true", "false", "null"):
            if self.text.startswith(literal, self.at):
                self.at += len(literal)
                return None
        if char == "-" or (char and char in DIGITS):
            return self.number()
        raise _Invalid

    def number(self) -> None:
        """number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT )."""
        if self.peek() == "-":
            self.take()
        first = self.take()
        if first not in DIGITS:
            raise _Invalid
        if first != "0":
            while self.peek() and self.peek() in DIGITS:
                self.take()
        if self.peek() == ".":
            self.take()
            self.digits()
        if self.peek() and self.peek() in "eE":
            self.take()
            if self.peek() and self.peek() in "+-":
                self.take()
            self.digits()
        return

    def digits(self) -> None:
        """1*DIGIT"""
        if not (self.peek() and self.peek() in DIGITS):
            raise _Invalid
        while self.peek() and self.peek() in DIGITS:
            self.take()

    def string(self) -> str:
        """string = quotation-mark *char quotation-mark, decoded; \\uXXXX escapes as they are (a
        surrogate escape is kept as the surrogate code point; a pair makes one code point)."""
        self.take()
        units: list[int] = []
        while True:
            char = self.take()
            if char == '"':
                return _from_units(units)
            if char == "\\":
                escape = self.take()
                if escape == "u":
                    digits = "".join(self.take() for _ in range(4))
                    if any(digit not in HEX for digit in digits):
                        raise _Invalid
                    units.append(int(digits, 16))
                elif escape in ESCAPES:
                    units.append(ord(ESCAPES[escape]))
                else:
                    raise _Invalid
            elif ord(char) < 0x20:  # unescaped = %x20-21 / %x23-5B / %x5D-10FFFF
                raise _Invalid
            else:
                units.append(ord(char))


def _from_units(units: list[int]) -> str:
    """Code points from UTF-16 code units where escapes made pairs; anything else as it is."""
    out: list[str] = []
    index = 0
    while index < len(units):
        unit = units[index]
        following = units[index + 1] if index + 1 < len(units) else -1
        if 0xD800 <= unit <= 0xDBFF and 0xDC00 <= following <= 0xDFFF:
            out.append(chr(0x10000 + ((unit - 0xD800) << 10) + (following - 0xDC00)))
            index += 2
        else:
            out.append(chr(unit))
            index += 1
    return "".join(out)
