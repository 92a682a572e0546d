"""ETags and the conditional headers (RFC 7232) of the API.

An export's HTTP ETag is its Table Storage etag, base64url-encoded and quoted: opaque, strong, and
free of the characters a table etag carries. The same value is in the `ETag` header and the body's
`etag`.

- `If-Match: <etag>[, <etag>...]` (PUT replace, PATCH, DELETE, the POST actions): the change is made
  only if the export is still at one of these versions, else 412 PreconditionFailed. `If-Match: *`:
  only if the export exists.
- `If-None-Match: *` (PUT): create only; if the export exists, 412 PreconditionFailed (RFC 7232
  section 3.2: a failed If-None-Match on a state-changing method answers 412, not 409).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from shared.api.errors import bad_request


def to_http(table_etag: str) -> str:
    return '"' + base64.urlsafe_b64encode(table_etag.encode()).decode().rstrip("=") + '"'


@dataclass(frozen=True)
class Preconditions:
    """The conditional headers of a request."""

    if_match: tuple[str, ...] | None = None  # HTTP etags; ("*",) for any
    create_only: bool = False  # If-None-Match: *

    @classmethod
    def parse(cls, if_match: str | None, if_none_match: str | None = None) -> Preconditions:
        tags: tuple[str, ...] | None = None
        if if_match is not None:
            tags = tuple(_normalize(t) for t in if_match.split(",") if t.strip())
            if not tags:
                raise bad_request("InvalidHeader", "If-Match must list ETags, or be *.", "If-Match")
        create_only = False
        if if_none_match is not None:
            if if_none_match.strip() != "*":
                raise bad_request(
                    "InvalidHeader", "If-None-Match is only supported as * (create only).", "If-None-Match"
                )
            create_only = True
        if create_only and tags is not None:
            raise bad_request(
                "InvalidHeader", "If-Match and If-None-Match cannot be combined.", "If-None-Match"
            )
        return cls(tags, create_only)

    @property
    def conditional(self) -> bool:
        return self.if_match is not None or self.create_only

    def matches(self, table_etag: str) -> bool:
        """Whether an existing export at this version passes If-Match."""
        if self.if_match is None or "*" in self.if_match:
            return True
        return to_http(table_etag) in self.if_match


def _normalize(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag
