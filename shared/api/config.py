"""The management API's own settings: who may call it.

Read from the environment on first use (not at import), or built directly by tests and local hosts.

- `AUTH_ISSUER`: accepted token issuers, comma-separated
  (`https://login.microsoftonline.com/<tenant>/v2.0`).
- `AUTH_AUDIENCE`: accepted token audiences, comma-separated (the API's application id URI, client id).
- `AUTH_JWKS_URI`: where the issuer publishes its signing keys (fetched and cached).
- `AUTH_JWKS`: the signing keys given directly: a JWKS JSON document, or the path of a file holding one.
- `TRUST_APP_SERVICE_AUTH` (`false`): accept App Service Authentication's `X-MS-CLIENT-PRINCIPAL`
  header; only with Easy Auth on, which strips forged ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.environment import flag, listing


@dataclass(frozen=True)
class ApiSettings:
    """How the API authenticates callers (webhooks follow the service's ALLOW_PRIVATE_WEBHOOKS)."""

    issuers: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    jwks_uri: str = ""
    jwks: str = ""  # a JWKS JSON document, or the path of a file holding one
    trust_app_service_auth: bool = False

    @property
    def bearer_configured(self) -> bool:
        """Whether bearer tokens can be checked: an issuer, an audience and a source of keys."""
        return bool(self.issuers and self.audiences and (self.jwks_uri or self.jwks))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        return cls(
            issuers=listing(env, "AUTH_ISSUER"),
            audiences=listing(env, "AUTH_AUDIENCE"),
            jwks_uri=env.get("AUTH_JWKS_URI", "").strip(),
            jwks=env.get("AUTH_JWKS", "").strip(),
            trust_app_service_auth=flag(env, "TRUST_APP_SERVICE_AUTH"),
        )
