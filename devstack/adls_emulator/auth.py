"""SharedKey authentication, checked the way the storage service checks it.

The string to sign is built from the request as received (verb, the standard
headers, the canonicalized ``x-ms-*`` headers and the canonicalized resource)
and compared with the ``Authorization: SharedKey account:signature`` header.
For a path-style URL (``http://127.0.0.1:port/account/...``) the canonicalized
resource is ``/account`` followed by the URL path, which itself starts with
``/account`` -- exactly what the SDK signs.

Bearer tokens and SAS are checked elsewhere (:mod:`.security` picks the scheme);
a request that reaches this check with another scheme, or none, is refused with
403 AuthenticationFailed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Mapping, Sequence
from functools import cmp_to_key
from urllib.parse import unquote

from .conditions import parse_http_date
from .errors import StorageError, error

MAX_CLOCK_SKEW_SECONDS = 15 * 60

# The service sorts canonicalized header names with a culture-aware comparison,
# not plain ordinal order. These weight tables and the comparison are the ones
# the Azure SDKs ship to reproduce it (azure-storage-*/_shared/authentication.py,
# MIT licence); without them a signature over e.g. two x-ms-meta-* headers whose
# names differ around a '-' would not match the client's.
# fmt: off
_TABLE_LV0 = [
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x71c, 0x0, 0x71f, 0x721, 0x723, 0x725,
    0x0, 0x0, 0x0, 0x72d, 0x803, 0x0, 0x0, 0x733, 0x0, 0xd03, 0xd1a, 0xd1c, 0xd1e,
    0xd20, 0xd22, 0xd24, 0xd26, 0xd28, 0xd2a, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0xe02, 0xe09, 0xe0a, 0xe1a, 0xe21, 0xe23, 0xe25, 0xe2c, 0xe32, 0xe35, 0xe36, 0xe48, 0xe51,
    0xe70, 0xe7c, 0xe7e, 0xe89, 0xe8a, 0xe91, 0xe99, 0xe9f, 0xea2, 0xea4, 0xea6, 0xea7, 0xea9,
    0x0, 0x0, 0x0, 0x743, 0x744, 0x748, 0xe02, 0xe09, 0xe0a, 0xe1a, 0xe21, 0xe23, 0xe25,
    0xe2c, 0xe32, 0xe35, 0xe36, 0xe48, 0xe51, 0xe70, 0xe7c, 0xe7e, 0xe89, 0xe8a, 0xe91, 0xe99,
    0xe9f, 0xea2, 0xea4, 0xea6, 0xea7, 0xea9, 0x0, 0x74c, 0x0, 0x750, 0x0,
]
_TABLE_LV4 = [
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x8012, 0x0, 0x0, 0x0, 0x0, 0x0, 0x8212, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
]
# fmt: on


def _weight(table: Sequence[int], text: str, index: int) -> int:
    if index >= len(text):
        return 0x1
    code = ord(text[index])
    return table[code] if code < len(table) else 0x0


def _compare(lhs: str, rhs: str) -> int:
    """Culture-aware header-name comparison used by the service."""
    tables = (_TABLE_LV0, _TABLE_LV4)
    level, i, j = 0, 0, 0
    while level < len(tables):
        if level == len(tables) - 1 and i != j:
            return -1 if i > j else 1
        w1 = _weight(tables[level], lhs, i)
        w2 = _weight(tables[level], rhs, j)
        if w1 == 0x1 and w2 == 0x1:
            i = j = 0
            level += 1
        elif w1 == w2:
            i += 1
            j += 1
        elif w1 == 0:
            i += 1
        elif w2 == 0:
            j += 1
        else:
            return -1 if w1 < w2 else 1
    return 0


_STANDARD_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


def string_to_sign(
    method: str,
    header_items: Sequence[tuple[str, str]],
    raw_path: str,
    raw_query: str,
    account: str,
) -> str:
    """Build the SharedKey string to sign from a request as it arrived."""
    headers: dict[str, str] = {}
    for name, value in header_items:
        lowered = name.lower()
        value = value.strip()
        headers[lowered] = f"{headers[lowered]},{value}" if lowered in headers else value
    standard = []
    for name in _STANDARD_HEADERS:
        value = headers.get(name, "")
        if name == "content-length" and value == "0":
            value = ""  # since 2015-02-21 a zero length is signed as empty
        standard.append(value)
    x_ms = sorted((n for n in headers if n.startswith("x-ms-")), key=cmp_to_key(_compare))
    canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in x_ms)
    resource = f"/{account}{raw_path}"
    params: dict[str, list[str]] = {}
    if raw_query:
        for pair in raw_query.split("&"):
            if not pair:
                continue
            name, _, value = pair.partition("=")
            params.setdefault(unquote(name).lower(), []).append(unquote(value))
    for name in sorted(params):
        resource += f"\n{name}:{','.join(sorted(params[name]))}"
    return method.upper() + "\n" + "\n".join(standard) + "\n" + canonical_headers + resource


def sign(key: str, text: str) -> str:
    """HMAC-SHA256 of ``text`` with the base64 account key, base64-encoded."""
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _auth_failed(detail: str) -> StorageError:
    return error("AuthenticationFailed", detail=detail)


def check_request_date(headers: Mapping[str, str], now: float | None = None) -> None:
    """Reject a request without a date, or one more than 15 minutes off, as the service does."""
    raw = headers.get("x-ms-date") or headers.get("date")
    if not raw:
        raise _auth_failed("Request date header not specified.")
    try:
        sent = parse_http_date(raw)
    except (TypeError, ValueError):
        raise _auth_failed(f"The date header '{raw}' is not in the correct format.") from None
    now = time.time() if now is None else now
    if abs(now - sent) > MAX_CLOCK_SKEW_SECONDS:
        when = "too old" if sent < now else "in the future"
        raise _auth_failed(f"Request date header {when}: '{raw}'")


def verify_shared_key(
    *,
    method: str,
    header_items: Sequence[tuple[str, str]],
    raw_path: str,
    raw_query: str,
    account: str,
    key: str,
) -> None:
    """Raise 403 AuthenticationFailed unless the request carries a valid SharedKey signature."""
    headers = {name.lower(): value.strip() for name, value in header_items}
    authorization = headers.get("authorization", "")
    if not authorization:
        if "sig" in {p.partition("=")[0].lower() for p in raw_query.split("&")}:
            raise _auth_failed("SAS authentication is not supported by this emulator; use the account key.")
        raise _auth_failed("The request is not authenticated: no Authorization header.")
    scheme, _, credentials = authorization.partition(" ")
    if scheme != "SharedKey":
        raise _auth_failed(f"Authorization scheme '{scheme}' is not supported; only SharedKey is.")
    claimed_account, _, signature = credentials.strip().partition(":")
    if claimed_account != account:
        raise _auth_failed(
            f"The account '{claimed_account}' in the Authorization header does not match "
            f"the URL's '{account}'."
        )
    check_request_date(headers)
    text = string_to_sign(method, header_items, raw_path, raw_query, account)
    try:
        expected = sign(key, text)
    except (binascii.Error, ValueError):
        raise _auth_failed("The account key configured in the emulator is not valid base64.") from None
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise _auth_failed(
            f"The MAC signature found in the HTTP request '{signature}' is not the same as any "
            f"computed signature. Server used following string to sign: '{text}'."
        )


class AccountRegistry:
    """Account names and their keys; thread-safe so keys can rotate mid-run."""

    def __init__(self, accounts: Mapping[str, str]) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}
        for name, key in accounts.items():
            self.set(name, key)

    @staticmethod
    def _validate(name: str, key: str) -> None:
        if not name or "/" in name or name.startswith("__"):
            raise ValueError(f"invalid account name: {name!r}")
        try:
            base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"account key for {name!r} is not valid base64") from None

    def set(self, name: str, key: str) -> None:
        """Add an account or replace its key (key rotation)."""
        self._validate(name, key)
        with self._lock:
            self._keys[name] = key

    def remove(self, name: str) -> bool:
        with self._lock:
            return self._keys.pop(name, None) is not None

    def key(self, name: str) -> str | None:
        with self._lock:
            return self._keys.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._keys)
