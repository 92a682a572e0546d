"""Customers' keys at rest: sealed with AES-256-GCM under a key the service holds.

The service key comes from the `KEY_ENCRYPTION_KEY` setting (in Azure, a Key Vault reference that the
platform resolves). Several keys may be listed, newest first, so the key can be rotated: keys sealed
under an older key still open, and are sealed again under the newest when the export is next written.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.model import Secret

_VERSION = "v1"


class SealError(ValueError):
    """A sealed key cannot be opened (wrong service key, or damaged). Says nothing of the key itself."""


class KeyBox:
    """Seals and opens customers' keys. The associated data binds a sealed key to its export."""

    def __init__(self, service_keys: Sequence[bytes]) -> None:
        if not service_keys:
            raise ValueError("at least one service key is needed")
        for key in service_keys:
            if len(key) != 32:
                raise ValueError("service keys are 32 bytes (AES-256)")
        self._keys = [AESGCM(key) for key in service_keys]
        self._ids = [_key_id(key) for key in service_keys]

    @classmethod
    def from_setting(cls, value: str) -> KeyBox:
        """Parse `KEY_ENCRYPTION_KEY`: comma-separated base64 keys, newest first."""
        keys = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            try:
                keys.append(base64.b64decode(part, validate=True))
            except (binascii.Error, ValueError):
                raise ValueError("KEY_ENCRYPTION_KEY must be base64 32-byte keys, comma-separated") from None
        return cls(keys)

    def seal(self, secret: Secret, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[0].encrypt(nonce, secret.value.encode(), context.encode())
        return f"{_VERSION}.{self._ids[0]}.{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: str) -> Secret:
        try:
            version, key_id, payload = sealed.split(".", 2)
            raw = base64.b64decode(payload)
        except (ValueError, binascii.Error):
            raise SealError("sealed key is malformed") from None
        if version != _VERSION or key_id not in self._ids:
            raise SealError("sealed key was sealed under a service key that is not configured")
        aead = self._keys[self._ids.index(key_id)]
        try:
            return Secret(aead.decrypt(raw[:12], raw[12:], context.encode()).decode())
        except (InvalidTag, ValueError):  # tampered, another context, a short payload, not UTF-8
            raise SealError("sealed key does not open under the configured service key") from None

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The service keys' ids, newest first (a hash: nothing of the keys themselves)."""
        return tuple(self._ids)

    def is_current(self, sealed: str) -> bool:
        """Whether a sealed key is under the newest service key (else: reseal on next write)."""
        return sealed.split(".", 2)[1:2] == [self._ids[0]]


def new_service_key() -> str:
    """A fresh base64 service key, for `KEY_ENCRYPTION_KEY`."""
    return base64.b64encode(os.urandom(32)).decode()


def _key_id(key: bytes) -> str:
    import hashlib

    return hashlib.sha256(b"signals-export key id" + key).hexdigest()[:8]
