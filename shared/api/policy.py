"""Which hosts the service may be told to contact (no request forgery).

- Storage: only hosts that end in one of `ALLOWED_STORAGE_SUFFIXES`. A local emulator is allowed by
  naming its host there (e.g. `127.0.0.1`); it is then the only kind of host reached over http.
- Webhooks: only https to hosts that resolve to public addresses (shared.notify), unless
  `ALLOW_PRIVATE_WEBHOOKS` is on (development).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.api.errors import bad_request
from shared.api.rules import storage_uri
from shared.notify import WebhookRefused, check_webhook_address


def host_allowed(host: str, suffixes: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for suffix in (s.strip().lower() for s in suffixes):
        if not suffix:
            continue
        if suffix.startswith("."):
            if host.endswith(suffix) and len(host) > len(suffix):
                return True
        elif host == suffix or host.endswith("." + suffix):
            return True
    return False


def check_storage_uri(uri: str, kind: str, suffixes: Sequence[str]) -> None:
    """Refuse a (well-formed) destination URI whose host the service may not contact."""
    host = storage_uri(uri, kind).host
    if not host_allowed(host, suffixes):
        raise bad_request(
            "StorageHostNotAllowed",
            "destination.uri must be an Azure Storage endpoint (its host must end in one of: "
            f"{', '.join(s for s in suffixes if s)}).",
            "destination.uri",
        )


def check_webhook(url: str, *, allow_private: bool) -> None:
    try:
        check_webhook_address(url, allow_private=allow_private)
    except WebhookRefused as refused:
        raise bad_request(
            "WebhookNotAllowed",
            f"notify.webhook is refused: {refused}. Webhooks must be https URLs on public addresses.",
            "notify.webhook",
        ) from None
