"""HTTP conditional headers (If-Match, If-None-Match, If-(Un)Modified-Since).

Evaluated inside the store's lock, against the state the operation will act on,
so a conditional write is atomic like on the real service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from .errors import StorageError, error


def parse_http_date(value: str) -> float:
    """Parse an RFC 1123 date into epoch seconds; raise ValueError when malformed."""
    parsed = parsedate_to_datetime(value)
    if parsed is None:  # pragma: no cover - older Pythons returned None
        raise ValueError(value)
    return parsed.timestamp()


def _etags(value: str) -> list[str]:
    """Split an If-Match/If-None-Match list into bare ETag values."""
    tags = []
    for part in value.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.append(tag.strip('"'))
    return tags


@dataclass(frozen=True)
class Conditions:
    """The four standard conditional headers of one request (or their x-ms-source-* twins)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: float | None = None
    if_unmodified_since: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], prefix: str = "") -> Conditions:
        """Read the headers (``prefix="x-ms-source-"`` for rename-source conditions)."""

        def date(name: str) -> float | None:
            raw = headers.get(prefix + name)
            if raw is None or raw == "":
                return None
            try:
                return parse_http_date(raw)
            except (TypeError, ValueError):
                raise error("InvalidHeaderValue") from None

        return cls(
            if_match=headers.get(prefix + "if-match") or None,
            if_none_match=headers.get(prefix + "if-none-match") or None,
            if_modified_since=date("if-modified-since"),
            if_unmodified_since=date("if-unmodified-since"),
        )

    @property
    def empty(self) -> bool:
        return (
            self.if_match is None
            and self.if_none_match is None
            and self.if_modified_since is None
            and self.if_unmodified_since is None
        )

    def check(
        self,
        etag: str | None,
        last_modified: float | None,
        *,
        read: bool = False,
        create: bool = False,
        source: bool = False,
    ) -> None:
        """Raise the service's error when a condition fails.

        ``etag``/``last_modified`` are None when the resource does not exist.
        ``read``: reads answer 304 for If-None-Match/If-Modified-Since, like the
        real service. ``create``: Path - Create answers 409 PathAlreadyExists for
        ``If-None-Match: *`` on an existing path. ``source``: rename-source
        conditions fail with 412 SourceConditionNotMet.
        """
        if self.empty:
            return
        failed = error("SourceConditionNotMet") if source else error("ConditionNotMet")
        not_modified = StorageError(304, "ConditionNotMet", "")
        exists = etag is not None
        if self.if_match is not None:
            if not exists:
                raise failed
            if self.if_match.strip() != "*" and etag not in _etags(self.if_match):
                raise failed
        if self.if_none_match is not None:
            if self.if_none_match.strip() == "*":
                if exists:
                    if create and not source:
                        raise error("PathAlreadyExists")
                    raise not_modified if read else failed
            elif exists and etag in _etags(self.if_none_match):
                raise not_modified if read else failed
        whole = None if last_modified is None else int(last_modified)
        if whole is not None:
            if self.if_modified_since is not None and whole <= int(self.if_modified_since):
                raise not_modified if read else failed
            if self.if_unmodified_since is not None and whole > int(self.if_unmodified_since):
                raise failed
