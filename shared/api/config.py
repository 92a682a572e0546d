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

from collections.abc import Mapping
from dataclasses import dataclass

from shared.settings import AppSettings


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
        """The API's settings among the app settings (shared.settings.AppSettings)."""
        app = AppSettings.read(env)
        return cls(
            issuers=app.auth_issuers,
            audiences=app.auth_audiences,
            jwks_uri=app.auth_jwks_uri,
            jwks=app.auth_jwks,
            trust_app_service_auth=app.trust_app_service_auth,
        )
