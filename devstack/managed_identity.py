"""A local managed-identity endpoint as App Service and Azure Functions serve it to the app.

The platform sets `IDENTITY_ENDPOINT` (a local `http://` URL) and `IDENTITY_HEADER` (a secret) in the
app's environment; azure-identity's `ManagedIdentityCredential` sees both and asks the endpoint, via
MSAL, with `GET <IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=<resource>[&client_id=<id>]` and
the header `X-IDENTITY-HEADER: <secret>` (msal/managed_identity.py `_obtain_token_on_app_service`,
msal 1.39). The answer is `{"access_token", "expires_on" (epoch seconds, a string), "resource",
"token_type", "client_id"}`
(https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference).
A user-assigned identity is chosen by `client_id` or `principal_id`/`object_id`; a request without
one gets the system-assigned identity (`system_assigned=`), as on App Service.

The tokens are the local Entra ID's (`devstack.entra.Directory`), so the emulator trusts them and the
local token endpoint accepts them as federated assertions.
"""

from __future__ import annotations

import secrets

from devstack.entra import Directory, ManagedIdentity
from devstack.httpserve import Call, LocalServer, Reply

API_VERSION = "2019-08-01"
PATH = "/msi/token"


def _error(status: int, message: str) -> Reply:
    return Reply.json(status, {"statusCode": status, "message": message})


class ManagedIdentityEndpoint:
    """Serves the directory's managed identities over plain HTTP on the loopback address, like the
    platform's endpoint (which never leaves the instance)."""

    def __init__(
        self,
        directory: Directory,
        *,
        system_assigned: ManagedIdentity | None = None,
        secret: str | None = None,
    ) -> None:
        self.directory = directory
        self.system_assigned = system_assigned
        self.secret = secret or secrets.token_urlsafe(24)
        self._server = LocalServer(self._handle)

    def _handle(self, call: Call) -> Reply:
        if call.path.rstrip("/") != PATH or call.method != "GET":
            return _error(404, "Not found.")
        if not secrets.compare_digest(call.headers.get("x-identity-header", ""), self.secret):
            return _error(401, "The X-IDENTITY-HEADER header is missing or does not match.")
        if call.query.get("api-version") != API_VERSION:
            return _error(400, f"Only api-version {API_VERSION} is served.")
        resource = call.query.get("resource", "")
        if not resource:
            return _error(400, "The resource parameter is required.")
        client_id = call.query.get("client_id")
        principal_id = call.query.get("principal_id") or call.query.get("object_id")
        if "mi_res_id" in call.query:
            return _error(400, "Selecting an identity by mi_res_id is not served locally; use client_id.")
        if client_id or principal_id:
            identity = self.directory.find_identity(client_id=client_id, principal_id=principal_id)
        else:
            identity = self.system_assigned
        if identity is None:
            return _error(400, "No managed identity found for specified ClientId/ResourceId/PrincipalId.")
        token = self.directory.managed_identity_token(identity.client_id, resource)
        expires_on = int(self.directory.clock()) + self.directory.lifetime
        return Reply.json(
            200,
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            },
        )

    def start(self, host: str = "127.0.0.1", port: int = 0) -> ManagedIdentityEndpoint:
        self._server.start(host, port)
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return f"{self._server.url}{PATH}"

    def environment(self) -> dict[str, str]:
        """What the platform sets in the app's environment for azure-identity to find the endpoint."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    def __enter__(self) -> ManagedIdentityEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
