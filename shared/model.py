"""The product's nouns: an export, its destination, its signal selection. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit


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


class AuthMethod(StrEnum):
    """How the service authenticates to a destination (the API's names)."""

    SHARED_KEY = "sharedKey"  # the account's access key
    SAS = "sas"  # a shared access signature for the filesystem or container
    ENTRA = "entra"  # Microsoft Entra ID: the service's identity, with a role on the filesystem or container


@dataclass(frozen=True, slots=True)
class SasToken:
    """A filesystem or container SAS (service or user delegation): the token, secret, and what the
    service knows of it without using it (shared.sas reads both from the token)."""

    token: Secret
    expires_at: float  # `se`, seconds since the epoch
    delegated: bool = False  # a user delegation SAS (signed with a key got through Entra ID)


@dataclass(frozen=True, slots=True)
class EntraId:
    """Microsoft Entra ID: the customer's tenant, where the service's application (or, in the service's
    own tenant, its managed identity) holds a role on the filesystem or container. No secret."""

    tenant_id: str


Credential = Secret | SasToken | EntraId
"""What a destination authenticates with: the account's shared key (a Secret), a SAS, or Entra ID."""


def account_name(account_url: str) -> str:
    """The storage account named by a URL: the host's first label, or the first path segment of a
    path-style local emulator URL such as http://127.0.0.1:10000/devstoreaccount1."""
    parsed = urlsplit(account_url)
    host = parsed.hostname or ""
    if host.replace(".", "").isdigit() or host == "localhost" or "." not in host:
        return parsed.path.strip("/").split("/")[0]
    return host.split(".")[0]


def auth_method(credential: Credential) -> AuthMethod:
    if isinstance(credential, SasToken):
        return AuthMethod.SAS
    if isinstance(credential, EntraId):
        return AuthMethod.ENTRA
    return AuthMethod.SHARED_KEY


class _OnAccount:
    """What both destination kinds tell from their account URL and credential."""

    __slots__ = ()
    account_url: str
    credential: Credential

    @property
    def method(self) -> AuthMethod:
        return auth_method(self.credential)

    @property
    def account(self) -> str:
        return account_name(self.account_url)


@dataclass(frozen=True, slots=True)
class AdlsDestination(_OnAccount):
    """An ADLS Gen2 account, filesystem and directory that an export writes files into."""

    account_url: str
    filesystem: str
    directory: str
    credential: Credential

    @property
    def kind(self) -> str:
        return "adls"

    @property
    def scope(self) -> str:
        """The filesystem: what a SAS or a role assignment covers."""
        return self.filesystem


@dataclass(frozen=True, slots=True)
class BlobDestination(_OnAccount):
    """A Blob container that an export writes in the Application Insights continuous-export layout."""

    account_url: str
    container: str
    credential: Credential

    @property
    def kind(self) -> str:
        return "blob"

    @property
    def scope(self) -> str:
        """The container: what a SAS or a role assignment covers."""
        return self.container


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
