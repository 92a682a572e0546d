"""Webhook notifications of state changes: queued by the health check, delivered by a queue function.

The health check only leaves a small message on the queue `export-notify` (`Notifier.send`): the
project, the export and the event, never the webhook's address or secret. The queue function
`notify_webhook` looks the export up and delivers (`Webhooks.deliver`); a failure raises, so the
queue tries again later (host.json `queues`) and finally moves the message to `export-notify-poison`.
A slow or unreachable receiver never delays a health check.

A delivery is a JSON POST signed with HMAC-SHA256 under the export's webhook secret over
`<timestamp>.<body>` (headers `X-Signals-Export-Timestamp` and `X-Signals-Export-Signature:
sha256=<hex>`; the timestamp also lets the receiver refuse replays), sent with httpx:

- the receiver's name is resolved once, and every address it has must be public (`is_public`): the
  connection then goes to that checked address, with the name in the Host header, the TLS SNI and the
  certificate check (httpx's `sni_hostname` extension), so a second lookup cannot steer it (DNS
  rebinding);
- redirects are not followed: a 3xx is a failed delivery;
- retries (stamina) and the request itself end within `DELIVERY_SECONDS`, whatever the receiver does.

httpx's request extensions `sni_hostname` and `trace`: https://www.python-httpx.org/advanced/extensions/
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import orjson
import stamina
from azure.core.exceptions import AzureError

from shared import messages
from shared.model import Export

if TYPE_CHECKING:
    import httpx  # imported when a delivery runs: no cold start of the other functions pays for it

log = logging.getLogger("signals_export.notify")

SIGNATURE_HEADER = "X-Signals-Export-Signature"
TIMESTAMP_HEADER = "X-Signals-Export-Timestamp"
ATTEMPTS = 3  # per delivery (one queue message); the queue then tries the message again
DELIVERY_SECONDS = 15.0  # one delivery, retries included
REQUEST_SECONDS = 5.0  # each network operation (connecting: 3 seconds)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(ValueError):
    """The webhook address is not one the service may call. The message never quotes the address."""


class WebhookUnresolved(WebhookRefused):
    """The webhook's host name does not resolve (now: it may later)."""


class NotDelivered(Exception):
    """The receiver did not take the notification. The queue function raises it: the queue tries again."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# -- which addresses may be called ------------------------------------------------------------------

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use, never global
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 2.5.5.1: deprecated, never routed
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
# Not globally reachable in the IANA IPv4 special-purpose registry
# (https://www.iana.org/assignments/iana-ipv4-special-registry/), yet global to some Pythons' tables.
_NOT_GLOBAL_V4 = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv4Network("192.88.99.0/24"))


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible
    (`::/96`), IPv4-translated, NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo (`2001::/32`:
    its server and its client)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in network for network in (_NAT64, _IPV4_COMPATIBLE, _IPV4_TRANSLATED)):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: Address) -> bool:
    """Whether the service may call this address: globally reachable unicast (not private, loopback,
    link-local, shared, reserved, documentation or multicast), and, for IPv6, no form that embeds an
    IPv4 address that is not (Python's `is_global` alone lets `64:ff9b::7f00:1` and `2002:7f00:1::`
    through, which reach 127.0.0.1 through a translator)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id or address in _LOCAL_NAT64 or address in _IPV4_COMPATIBLE:
            return False
        if not all(is_public(inner) for inner in embedded_ipv4(address)):
            return False
    elif any(address in network for network in _NOT_GLOBAL_V4):
        return False
    return address.is_global and not address.is_multicast


Resolve = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address of a host name (the system resolver), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A webhook, checked: where to connect, and the name the receiver answers to."""

    scheme: str
    host: str  # the name in the URL: Host header, SNI and certificate check
    port: int
    target: str  # path and query
    address: Address  # resolved and checked: the connection goes here

    @property
    def connect_url(self) -> str:
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{literal}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def check_webhook_address(url: str, *, allow_private: bool = False, resolve: Resolve = resolve) -> Target:
    """Refuse anything but https to a host whose every address is public (no request forgery), and
    say where to connect: the host is resolved here, once. With `allow_private` (development), http
    and private addresses are allowed; the connection still goes to the address resolved here."""
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError:
        raise WebhookRefused("webhook is not a URL") from None
    scheme = parsed.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise WebhookRefused("webhook must be an https URL")
    host = parsed.hostname
    if not host:
        raise WebhookRefused("webhook URL has no host")
    if parsed.username or parsed.password:
        raise WebhookRefused("webhook URL must not carry credentials")
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(found) for found in resolve(host, port)]
    except (OSError, UnicodeError, ValueError):
        raise WebhookUnresolved("webhook host does not resolve") from None
    if not addresses:
        raise WebhookUnresolved("webhook host does not resolve")
    if not allow_private and not all(is_public(address) for address in addresses):
        raise WebhookRefused("webhook host resolves to a private, loopback or link-local address")
    target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    return Target(scheme, host, port, target, addresses[0])


# -- queueing ------------------------------------------------------------------------------------


class Queue(Protocol):
    def send_message(self, content: str) -> Any: ...


class Notice(StrEnum):
    """What became of a notification when the health check left it: what its history records."""

    QUEUED = "queued"
    NOT_QUEUED = "not-queued"


class Notifier:
    """Leaves state changes for the queue function that posts them to exports' webhooks."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def send(self, export: Export, event: Mapping[str, Any]) -> Notice | None:
        """Queue the event for the export's webhook; None when the export names none. Never raises:
        a notification must not stop a health check."""
        if not export.webhook:
            return None
        message = {"projectId": export.project_id, "exportId": export.export_id, "event": event}
        try:
            self._queue.send_message(messages.encode(message))  # as the queue trigger decodes it
        except AzureError:
            log.exception("webhook notification not queued", extra=_ids(export.project_id, export.export_id))
            return Notice.NOT_QUEUED
        return Notice.QUEUED


# -- delivery -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """How a notification went."""

    delivered: bool
    attempts: int
    detail: str


class ReceiverFailed(Exception):
    """The receiver answered, but not with a 2xx."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class Exports(Protocol):
    def get(self, project_id: str, export_id: str) -> tuple[Export, str]: ...


class Webhooks:
    """Delivers queued notifications: the queue function's work."""

    def __init__(
        self,
        exports: Exports,
        *,
        allow_private: bool = False,
        resolve: Resolve = resolve,
        verify: ssl.SSLContext | bool = True,
        deadline: float = DELIVERY_SECONDS,
        timeout: float = REQUEST_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._exports = exports
        self._allow_private = allow_private
        self._resolve = resolve
        self._verify = verify
        self._deadline = deadline
        self._timeout = timeout
        self._clock = clock

    def deliver(self, message: str | bytes) -> Delivery:
        """POST one queued notification to its export's current webhook.

        Raises NotDelivered when the receiver did not take it (or its name does not resolve), for the
        queue to try again. An export that is gone, names no webhook, or whose webhook is not allowed
        is logged and not retried: trying again cannot help."""
        document = orjson.loads(message)
        project_id, export_id, event = document["projectId"], document["exportId"], document["event"]
        ids = _ids(project_id, export_id)
        try:
            export, _ = self._exports.get(project_id, export_id)
        except LookupError:
            export = None
        if export is None or not export.webhook:
            log.info("webhook notification dropped: the export no longer has a webhook", extra=ids)
            return Delivery(False, 0, "no webhook")
        try:
            target = check_webhook_address(
                export.webhook, allow_private=self._allow_private, resolve=self._resolve
            )
        except WebhookUnresolved as unresolved:
            raise NotDelivered(str(unresolved)) from None
        except WebhookRefused as refused:
            log.warning("webhook notification dropped", extra={**ids, "detail": str(refused)})
            return Delivery(False, 0, str(refused))
        secret = export.webhook_secret.value if export.webhook_secret is not None else None
        return self._post(target, orjson.dumps(event), secret, ids)

    def _post(self, target: Target, body: bytes, secret: str | None, ids: dict[str, str]) -> Delivery:
        import httpx

        deadline = time.monotonic() + self._deadline
        attempts = 0
        client = httpx.Client(
            timeout=httpx.Timeout(self._timeout, connect=min(3.0, self._timeout), pool=1.0),
            verify=self._verify,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would resolve the name itself
            limits=httpx.Limits(max_keepalive_connections=0),  # each attempt its own connection
        )
        try:
            for attempt in stamina.retry_context(
                on=_retryable, attempts=ATTEMPTS, timeout=self._deadline, wait_initial=0.5, wait_max=2.0
            ):
                with attempt:
                    attempts += 1
                    status = self._send(client, target, body, secret, deadline)
        except (httpx.HTTPError, ReceiverFailed) as error:
            detail = str(error) if isinstance(error, ReceiverFailed) else type(error).__name__
            log.warning("webhook not delivered", extra={**ids, "attempts": attempts, "detail": detail})
            raise NotDelivered(detail) from None
        finally:
            client.close()
        log.info("webhook delivered", extra={**ids, "attempts": attempts, "status": status})
        return Delivery(True, attempts, f"HTTP {status}")

    def _send(
        self, client: httpx.Client, target: Target, body: bytes, secret: str | None, deadline: float
    ) -> int:
        timestamp = str(int(self._clock()))
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": "signals-export-webhook/1",
            TIMESTAMP_HEADER: timestamp,
        }
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        with _ended_at(deadline) as trace:
            extensions = {"sni_hostname": target.host, "trace": trace}
            request = client.build_request(
                "POST", target.connect_url, content=body, headers=headers, extensions=extensions
            )
            response = client.send(request, stream=True)  # the status is all we read
            response.close()
        if not 200 <= response.status_code < 300:
            raise ReceiverFailed(response.status_code)
        return response.status_code


def _retryable(error: Exception) -> bool:
    """Worth another attempt at once: the network, or a receiver that is busy or failing."""
    import httpx

    if isinstance(error, ReceiverFailed):
        return error.status in {408, 429} or error.status >= 500
    return isinstance(error, httpx.TransportError)


@contextlib.contextmanager
def _ended_at(deadline: float) -> Iterator[Callable[[str, Mapping[str, Any]], None]]:
    """A `trace` hook (httpcore's documented request extension) that keeps the request's sockets, and
    a timer that shuts them down at the deadline: a receiver that answers a byte at a time, inside
    every per-operation timeout, is still cut off."""
    sockets: list[socket.socket] = []
    expired = threading.Event()

    def trace(event: str, info: Mapping[str, Any]) -> None:
        if event in {"connection.connect_tcp.complete", "connection.start_tls.complete"}:
            sock = info["return_value"].get_extra_info("socket")
            if sock is not None:
                sockets.append(sock)
                if expired.is_set():
                    _shut(sock)

    def expire() -> None:
        expired.set()
        for sock in list(sockets):
            _shut(sock)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
    timer.daemon = True
    timer.start()
    try:
        yield trace
    finally:
        timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed, or detached by the TLS wrapper
        sock.shutdown(socket.SHUT_RDWR)


def _ids(project_id: str, export_id: str) -> dict[str, str]:
    return {"project_id": project_id, "export_id": export_id}
