"""Webhook notifications of state changes: a signed JSON POST, retried, never blocking the pipeline.

The body is signed with HMAC-SHA256 under the export's webhook secret; the receiver checks
`X-Signals-Export-Signature: sha256=<hex>` over `<timestamp>.<body>` with the timestamp from
`X-Signals-Export-Timestamp`, which also lets it refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import orjson

from shared.model import Export

log = logging.getLogger("signals_export.notify")

SIGNATURE_HEADER = "X-Signals-Export-Signature"
TIMESTAMP_HEADER = "X-Signals-Export-Timestamp"


class WebhookRefused(ValueError):
    """The webhook address is not one the service may call."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def check_webhook_address(url: str, *, allow_private: bool = False) -> None:
    """Refuse anything but https to a host that resolves only to public addresses (no SSRF)."""
    parsed = urlparse(url)
    if parsed.scheme != "https" and not (allow_private and parsed.scheme == "http"):
        raise WebhookRefused("webhook must be an https URL")
    if not parsed.hostname:
        raise WebhookRefused("webhook URL has no host")
    if parsed.username or parsed.password:
        raise WebhookRefused("webhook URL must not carry credentials")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        raise WebhookRefused("webhook host does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise WebhookRefused("webhook host resolves to a private, loopback or link-local address")


@dataclass(frozen=True)
class Delivery:
    """How a notification went."""

    delivered: bool
    attempts: int
    detail: str


Post = Callable[[str, bytes, Mapping[str, str], float], int]


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (checked above)
        return int(response.status)


class Notifier:
    """Sends state changes to exports' webhooks."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        attempts: int = 3,
        timeout: float = 5.0,
        post: Post = _post,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._allow_private = allow_private
        self._attempts = attempts
        self._timeout = timeout
        self._post = post
        self._sleep = sleep
        self._clock = clock

    def send(self, export: Export, event: Mapping[str, Any]) -> Delivery | None:
        """POST the event to the export's webhook; None when the export names none."""
        if not export.webhook:
            return None
        try:
            check_webhook_address(export.webhook, allow_private=self._allow_private)
        except WebhookRefused as refused:
            return Delivery(False, 0, str(refused))
        body = orjson.dumps(event)
        detail = ""
        for attempt in range(1, self._attempts + 1):
            timestamp = str(int(self._clock()))
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
            if export.webhook_secret is not None:
                headers[SIGNATURE_HEADER] = sign(export.webhook_secret.value, timestamp, body)
            try:
                status = self._post(export.webhook, body, headers, self._timeout)
            except Exception as error:  # the receiver's problem must not become ours
                detail = type(error).__name__
            else:
                if 200 <= status < 300:
                    return Delivery(True, attempt, f"HTTP {status}")
                detail = f"HTTP {status}"
            if attempt < self._attempts:
                self._sleep(0.5 * 2 ** (attempt - 1))
        log.warning(
            "webhook not delivered",
            extra={"project_id": export.project_id, "export_id": export.export_id, "detail": detail},
        )
        return Delivery(False, self._attempts, detail)
