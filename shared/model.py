"""The product's nouns: an export, its destination, its signal selection. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Granularity(StrEnum):
    """How much time one ADLS Gen2 file covers."""

    HOUR = "hour"
    DAY = "day"


class ReplayPlacement(StrEnum):
    """Where replayed signals go: in the folder of the time they are replayed (readers that move
    forward through the folders find them), or back in their original time bucket."""

    CURRENT = "current"
    ORIGINAL = "original"


class ExportStatus(StrEnum):
    """The service's view of an export's health, as the customer sees it."""

    ACTIVE = "active"
    POSTPONED = "postponed"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Secret:
    """A customer's key. Never printed: repr and str hide it, so a log line or traceback cannot leak it."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class AdlsDestination:
    """An ADLS Gen2 account, filesystem and directory that an export writes files into."""

    account_url: str
    filesystem: str
    directory: str
    key: Secret

    @property
    def kind(self) -> str:
        return "adls"


@dataclass(frozen=True, slots=True)
class BlobDestination:
    """A Blob container that an export writes in the Application Insights continuous-export layout."""

    account_url: str
    container: str
    key: Secret

    @property
    def kind(self) -> str:
        return "blob"


Destination = AdlsDestination | BlobDestination


@dataclass(frozen=True, slots=True)
class LocationOption:
    """Add the location of the client IP address to each signal, as Application Insights' export did.

    `ip_field` is a JSON pointer (RFC 6901) to the address's string field; the location goes under the
    top-level member `key`; `anonymize` zeroes the address's last octet (IPv4) or last 80 bits (IPv6)
    in the output. How a signal is enriched is shared.location's."""

    ip_field: str
    key: str = "location"
    anonymize: bool = True


@dataclass(frozen=True, slots=True)
class Export:
    """One customer export: which signals of a project go where."""

    project_id: str
    export_id: str
    destination: Destination
    signals: frozenset[str] | None = None  # None: all signals
    granularity: Granularity = Granularity.HOUR
    enabled: bool = True
    status: ExportStatus = ExportStatus.ACTIVE
    webhook: str | None = None  # notified of state changes
    webhook_secret: Secret | None = None  # signs the notifications
    generation: str = ""  # set when the export is created: tells it from an earlier one of the same id
    replay_placement: ReplayPlacement = ReplayPlacement.CURRENT
    location: LocationOption | None = None  # enrich signals with their client's location

    def selects(self, name: str) -> bool:
        """Whether a signal of this name belongs to the export."""
        return self.signals is None or name in self.signals

    @property
    def key(self) -> tuple[str, str]:
        return (self.project_id, self.export_id)

    def owner(self, partition: str) -> str:
        """The mark of the files this export's writer for a partition creates (shared.delivery): a file
        found with another mark is not this writer's, even at one of its paths."""
        return f"{self.project_id}/{self.export_id}/{self.generation}/{partition}"
