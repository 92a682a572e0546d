"""A local Microsoft Entra ID: tenants, one multi-tenant application trusting a managed identity through
a federated identity credential, admin consent per tenant, and the token endpoint the service's
azure-identity credentials call.

What it serves (HTTPS; the authority is `https://127.0.0.1:<port>`):

- `POST /{tenant}/oauth2/v2.0/token`: the client credentials grant with a client assertion, as
  azure-identity's `ClientAssertionCredential` sends it (`azure/identity/_internal/aad_client_base.py`,
  `_get_jwt_assertion_request`: `client_assertion`, `client_assertion_type=...jwt-bearer`,
  `client_id`, `grant_type=client_credentials`, `scope`). The assertion must be a token this
  directory signed and must match one of the application's federated identity credentials (issuer,
  subject, audience), as Entra checks it
  (https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
  A tenant where the application has no service principal (no admin consent) is refused with
  AADSTS700016, 400 `unauthorized_client`, in Entra's error body (the shape of real responses quoted
  in Azure/azure-sdk-for-python#8314 and microsoft/AzureTRE#1475).
- `GET /{tenant}/v2.0/.well-known/openid-configuration` and `GET /{tenant}/discovery/v2.0/keys`
  (also `/common/...`): the metadata and signing keys, for anything that validates the tokens.
- `GET /{tenant}/adminconsent?client_id=...` (and `/{tenant}/v2.0/adminconsent`): what a customer's
  administrator opens to consent; here it grants at once and redirects to `redirect_uri` with
  `admin_consent=True&tenant=...` (https://learn.microsoft.com/en-us/entra/identity-platform/v2-admin-consent).
- `/__entra/...`: control endpoints for tests and the local host (no authentication): see `_control`.

Tokens for Azure Storage are v1 access tokens, as Entra issues them for the Storage resource
(`iss` `https://sts.windows.net/{tid}/`, `ver` 1.0, `appid`, `oid`, `tid`: the claims quoted in
MicrosoftDocs/azure-docs#11564; Azurite's `--oauth basic` accepts only `sts.*` issuers,
`azurite/src/common/utils/constants.ts` `VALID_ISSUE_PREFIXES`). Tokens for the token exchange
audience `api://AzureADTokenExchange` (the managed identity's assertion) are v2 tokens whose issuer
is `https://login.microsoftonline.com/{tid}/v2.0` and whose subject is the identity's principal id.

The `oid` of an application in a tenant is its service principal's object id there, made when the
tenant consents (a new id per tenant, as in Entra): role assignments name that id.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.httpserve import Call, LocalServer, Reply

STORAGE_RESOURCE = "https://storage.azure.com"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 (an audience, not a secret)
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_LIFETIME = 3600
# Entra accepts assertions a little outside their lifetime (IdentityModel's default clock skew).
CLOCK_SKEW = 300
_NAMESPACE = uuid.UUID("0c3f5c38-52b3-4f8f-8d36-9ac4c6a33a61")


def v1_issuer(tenant: str) -> str:
    return f"https://sts.windows.net/{tenant}/"


def v2_issuer(tenant: str) -> str:
    return f"https://login.microsoftonline.com/{tenant}/v2.0"


def _guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _b64url(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def storage_resource(resource: str) -> bool:
    """Audiences that mean Azure Storage: the resource id, with or without the slash, or an account's
    own endpoint (https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-azure-active-directory)."""
    if resource.rstrip("/") == STORAGE_RESOURCE:
        return True
    host = urlsplit(resource).hostname or ""
    return resource.startswith("https://") and host.endswith(
        (".blob.core.windows.net", ".dfs.core.windows.net")
    )


class EntraError(Exception):
    """An error answer of the token endpoint: status, OAuth `error`, AADSTS code and description."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def body(self, now: float) -> dict[str, Any]:
        """Entra's error body: the description ends with the trace and correlation ids and time."""
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.description}\r\nTrace ID: {trace}\r\n"
                f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
            ),
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def _no_federated_match(code: int, what: str, value: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        code,
        f"No matching federated identity record found for presented assertion {what} '{value}'. "
        "Check your federated identity credential Subject, Audience and Issuer against the presented "
        "assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
    )


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential of an application: whose tokens it accepts as its secret."""

    issuer: str
    subject: str
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)


@dataclass
class Application:
    """An application registration (multi-tenant) in its home tenant."""

    client_id: str
    home_tenant: str
    federated_credentials: list[FederatedCredential] = field(default_factory=list)


@dataclass(frozen=True)
class ManagedIdentity:
    """A user-assigned managed identity: its client id, its principal (object) id and its tenant."""

    client_id: str
    principal_id: str
    tenant: str

    def federated_credential(self) -> FederatedCredential:
        """The credential an application needs to trust this identity's tokens
        (issuer, subject = principal id, audience `api://AzureADTokenExchange`)."""
        return FederatedCredential(v2_issuer(self.tenant), self.principal_id)


class Directory:
    """The tenants, applications, consents and managed identities, and one signing key. Thread-safe."""

    def __init__(
        self,
        key: rsa.RSAPrivateKey | None = None,
        *,
        clock: Callable[[], float] = time.time,
        lifetime: int = DEFAULT_LIFETIME,
    ) -> None:
        self._key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.clock = clock
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._tenants: set[str] = set()
        self._apps: dict[str, Application] = {}
        self._identities: dict[str, ManagedIdentity] = {}
        self._principals: dict[tuple[str, str], str] = {}  # (tenant, client id) -> object id
        numbers = self._key.public_key().public_numbers()
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:20]).decode().rstrip("=")
        self._jwk = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64url(numbers.n),
            "e": _b64url(numbers.e),
        }

    # -- configuration -----------------------------------------------------------------------------

    def add_tenant(self, tenant: str) -> None:
        if not _guid(tenant):
            raise ValueError("a tenant id is a lower-case GUID")
        with self._lock:
            self._tenants.add(tenant)

    def tenants(self) -> list[str]:
        with self._lock:
            return sorted(self._tenants)

    def add_application(
        self, client_id: str, home_tenant: str, federated_credentials: Iterable[FederatedCredential] = ()
    ) -> Application:
        """Register a multi-tenant application in its home tenant (where it has a service principal)."""
        if not _guid(client_id):
            raise ValueError("a client id is a lower-case GUID")
        self.add_tenant(home_tenant)
        app = Application(client_id, home_tenant, list(federated_credentials))
        with self._lock:
            self._apps[client_id] = app
        self.grant_consent(home_tenant, client_id)
        return app

    def add_managed_identity(self, identity: ManagedIdentity) -> None:
        if not (_guid(identity.client_id) and _guid(identity.principal_id)):
            raise ValueError("a managed identity's client and principal ids are lower-case GUIDs")
        self.add_tenant(identity.tenant)
        with self._lock:
            self._identities[identity.client_id] = identity

    def managed_identities(self) -> list[ManagedIdentity]:
        with self._lock:
            return list(self._identities.values())

    def grant_consent(self, tenant: str, client_id: str) -> str:
        """Admin consent in `tenant`: the application gets a service principal there. Returns its id."""
        with self._lock:
            if tenant not in self._tenants:
                raise KeyError("unknown tenant")
            if client_id not in self._apps:
                raise KeyError("unknown application")
            return self._principals.setdefault(
                (tenant, client_id), str(uuid.uuid5(_NAMESPACE, f"{tenant}/{client_id}"))
            )

    def revoke_consent(self, tenant: str, client_id: str) -> bool:
        """Delete the application's service principal in `tenant` (not in its home tenant)."""
        with self._lock:
            app = self._apps.get(client_id)
            if app is None or app.home_tenant == tenant:
                return False
            return self._principals.pop((tenant, client_id), None) is not None

    def service_principal_id(self, tenant: str, client_id: str) -> str | None:
        """The object id of the application in `tenant`, or None before consent."""
        with self._lock:
            return self._principals.get((tenant, client_id))

    # -- keys and tokens -----------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """The public signing keys, as `/discovery/v2.0/keys` publishes them."""
        return {"keys": [dict(self._jwk)]}

    def _sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def mint(self, claims: Mapping[str, Any]) -> str:
        """Sign any claims with the directory's key (tests use it for tokens Entra would never issue)."""
        return self._sign(claims)

    def _times(self) -> dict[str, int]:
        now = int(self.clock())
        return {"iat": now, "nbf": now, "exp": now + self.lifetime}

    def access_token(self, *, tenant: str, resource: str, client_id: str, object_id: str) -> str:
        """An access token of an application or identity (`object_id` in `tenant`) for `resource`."""
        times = self._times()
        if resource == TOKEN_EXCHANGE_AUDIENCE:
            claims: dict[str, Any] = {
                "aud": resource,
                "iss": v2_issuer(tenant),
                **times,
                "azp": client_id,
                "azpacr": "2",
                "idtyp": "app",
                "oid": object_id,
                "sub": object_id,
                "tid": tenant,
                "ver": "2.0",
                "uti": uuid.uuid4().hex,
            }
        else:
            claims = {
                "aud": resource,
                "iss": v1_issuer(tenant),
                **times,
                "appid": client_id,
                "appidacr": "2",
                "idp": v1_issuer(tenant),
                "idtyp": "app",
                "oid": object_id,
                "sub": object_id,
                "tid": tenant,
                "ver": "1.0",
                "uti": uuid.uuid4().hex,
            }
        return self._sign(claims)

    def managed_identity_token(self, client_id: str, resource: str) -> str:
        identity = self._identity(client_id)
        return self.access_token(
            tenant=identity.tenant,
            resource=resource,
            client_id=identity.client_id,
            object_id=identity.principal_id,
        )

    def _identity(self, client_id: str) -> ManagedIdentity:
        with self._lock:
            identity = self._identities.get(client_id)
        if identity is None:
            raise KeyError("unknown managed identity")
        return identity

    def find_identity(
        self, *, client_id: str | None = None, principal_id: str | None = None
    ) -> ManagedIdentity | None:
        with self._lock:
            for identity in self._identities.values():
                if client_id is not None and identity.client_id == client_id:
                    return identity
                if principal_id is not None and identity.principal_id == principal_id:
                    return identity
        return None

    # -- the token endpoint --------------------------------------------------------------------------

    def client_credentials(self, tenant: str, form: Mapping[str, str]) -> dict[str, Any]:
        """The client credentials grant with a federated assertion; raises EntraError as Entra answers."""
        with self._lock:
            known_tenant = tenant in self._tenants
        if not known_tenant:
            raise EntraError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        if form.get("grant_type") != "client_credentials":
            raise EntraError(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        client_id = form.get("client_id", "")
        with self._lock:
            app = self._apps.get(client_id)
            principal = self._principals.get((tenant, client_id))
        if app is None or principal is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
                "This can happen if the application has not been installed by the administrator of the "
                "tenant or consented to by any user in the tenant. You may have sent your authentication "
                "request to the wrong tenant.",
            )
        assertion = form.get("client_assertion", "")
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            raise EntraError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' "
                "grant type.",
            )
        self._check_assertion(app, assertion)
        scope = form.get("scope", "")
        if not scope.endswith("/.default") or " " in scope.strip():
            raise EntraError(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = scope.strip()[: -len("/.default")]
        if not storage_resource(resource):
            raise EntraError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tenant}. This "
                "can happen if the application has not been installed by the administrator of the tenant or "
                "consented to by any user in the tenant. You might have sent your authentication request to "
                "the wrong tenant.",
            )
        token = self.access_token(tenant=tenant, resource=resource, client_id=client_id, object_id=principal)
        return {
            "token_type": "Bearer",
            "expires_in": self.lifetime - 1,
            "ext_expires_in": self.lifetime - 1,
            "access_token": token,
        }

    def _check_assertion(self, app: Application, assertion: str) -> None:
        """Signature, lifetime, then a federated credential matching issuer, subject and audience."""
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. [Reason - The key was not found.]",
            ) from None
        if header.get("kid") != self.kid:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. [Reason - The key was not found.]",
            )
        now = self.clock()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if (
            not isinstance(exp, int | float)
            or now > exp + CLOCK_SKEW
            or (isinstance(nbf, int | float) and now < nbf - CLOCK_SKEW)
        ):
            raise EntraError(
                401, "invalid_client", 700024, "Client assertion is not within its valid time range."
            )
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else [str(a) for a in audiences]
        candidates = [c for c in app.federated_credentials if c.issuer == issuer]
        if not candidates:
            raise _no_federated_match(700211, "issuer", issuer)
        candidates = [c for c in candidates if c.subject == subject]
        if not candidates:
            raise _no_federated_match(700213, "subject", subject)
        if not any(a in c.audiences for c in candidates for a in audiences):
            raise _no_federated_match(700212, "audience", ",".join(audiences))

    # -- HTTP ----------------------------------------------------------------------------------------

    def handle(self, call: Call, base_url: str) -> Reply:
        """Route one request of the local Entra ID."""
        parts = [p for p in call.path.split("/") if p]
        if parts[:1] == ["__entra"]:
            return self._control(call, parts[1:])
        if len(parts) < 2:
            return Reply.json(404, {"error": "not_found"})
        tenant, rest = parts[0], parts[1:]
        if call.method == "POST" and rest == ["oauth2", "v2.0", "token"]:
            try:
                return Reply.json(
                    200, self.client_credentials(tenant, call.form()), [("Cache-Control", "no-store")]
                )
            except EntraError as error:
                return Reply.json(error.status, error.body(self.clock()), [("Cache-Control", "no-store")])
        if call.method == "GET" and rest in (["v2.0", ".well-known", "openid-configuration"],):
            return Reply.json(200, self._metadata(tenant, base_url))
        if call.method == "GET" and rest in (["discovery", "v2.0", "keys"], ["discovery", "keys"]):
            return Reply.json(200, self.jwks())
        if call.method == "GET" and rest in (["adminconsent"], ["v2.0", "adminconsent"]):
            return self._admin_consent(tenant, call)
        return Reply.json(404, {"error": "not_found"})

    def _metadata(self, tenant: str, base_url: str) -> dict[str, Any]:
        return {
            "issuer": v2_issuer(tenant),
            "token_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/authorize",
            "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
        }

    def _admin_consent(self, tenant: str, call: Call) -> Reply:
        client_id = call.query.get("client_id", "")
        try:
            self.grant_consent(tenant, client_id)
        except KeyError:
            return Reply.json(
                400, {"error": "invalid_request", "error_description": "unknown tenant or client_id"}
            )
        redirect = call.query.get("redirect_uri")
        if redirect:
            query = {"admin_consent": "True", "tenant": tenant}
            if "state" in call.query:
                query["state"] = call.query["state"]
            separator = "&" if "?" in redirect else "?"
            return Reply(302, b"", [("Location", f"{redirect}{separator}{urlencode(query)}")])
        return Reply(200, b"Admin consent granted.\n", [("Content-Type", "text/plain; charset=utf-8")])

    def _control(self, call: Call, parts: list[str]) -> Reply:
        """`GET /__entra/state`; `PUT /__entra/tenants/{t}`; `PUT|DELETE /__entra/tenants/{t}/consents/{app}`
        (PUT answers the service principal's object id)."""
        if parts == ["state"] and call.method == "GET":
            return Reply.json(200, self.state())
        if len(parts) == 2 and parts[0] == "tenants" and call.method == "PUT":
            try:
                self.add_tenant(parts[1])
            except ValueError as error:
                return Reply.json(400, {"error": str(error)})
            return Reply.json(200, {"tenant": parts[1]})
        if len(parts) == 4 and parts[0] == "tenants" and parts[2] == "consents":
            tenant, client_id = parts[1], parts[3]
            if call.method == "PUT":
                try:
                    return Reply.json(200, {"servicePrincipalId": self.grant_consent(tenant, client_id)})
                except KeyError:
                    return Reply.json(404, {"error": "unknown tenant or application"})
            if call.method == "DELETE":
                return (
                    Reply(204)
                    if self.revoke_consent(tenant, client_id)
                    else Reply.json(404, {"error": "no consent"})
                )
        return Reply.json(404, {"error": "unknown control endpoint"})

    # -- state ---------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything but the key, as JSON (also what `save` writes)."""
        with self._lock:
            return {
                "tenants": sorted(self._tenants),
                "applications": [
                    {
                        "clientId": app.client_id,
                        "homeTenant": app.home_tenant,
                        "federatedCredentials": [
                            {"issuer": c.issuer, "subject": c.subject, "audiences": list(c.audiences)}
                            for c in app.federated_credentials
                        ],
                    }
                    for app in self._apps.values()
                ],
                "servicePrincipals": [
                    {"tenant": tenant, "clientId": client_id, "objectId": object_id}
                    for (tenant, client_id), object_id in sorted(self._principals.items())
                ],
                "managedIdentities": [
                    {"clientId": i.client_id, "principalId": i.principal_id, "tenant": i.tenant}
                    for i in self._identities.values()
                ],
            }

    def save(self, folder: Path) -> None:
        """Write the key (owner-only) and the state, so a restarted host keeps its tenants and consents."""
        folder.mkdir(parents=True, exist_ok=True)
        key_file = folder / "signing-key.pem"
        if not key_file.exists():
            pem = self._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
        temporary = folder / "directory.json.tmp"
        temporary.write_text(json.dumps(self.state(), indent=2) + "\n")
        temporary.replace(folder / "directory.json")
        (folder / "jwks.json").write_text(json.dumps(self.jwks(), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path, **kwargs: Any) -> Directory:
        """A directory saved by `save`, or a new empty one when the folder has none."""
        key = None
        key_file = folder / "signing-key.pem"
        if key_file.exists():
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{key_file} does not hold an RSA private key")
            key = loaded
        directory = cls(key, **kwargs)
        try:
            state = json.loads((folder / "directory.json").read_text())
        except (OSError, ValueError):
            return directory
        for tenant in state.get("tenants", []):
            directory.add_tenant(tenant)
        for app in state.get("applications", []):
            credentials = [
                FederatedCredential(c["issuer"], c["subject"], tuple(c["audiences"]))
                for c in app.get("federatedCredentials", [])
            ]
            directory.add_application(app["clientId"], app["homeTenant"], credentials)
        for identity in state.get("managedIdentities", []):
            directory.add_managed_identity(
                ManagedIdentity(identity["clientId"], identity["principalId"], identity["tenant"])
            )
        for principal in state.get("servicePrincipals", []):
            with directory._lock:
                directory._principals[(principal["tenant"], principal["clientId"])] = principal["objectId"]
        return directory


class LocalEntra:
    """The directory served over HTTPS: `authority` is what azure-identity's `authority=` takes."""

    def __init__(self, directory: Directory, context: Any) -> None:
        self.directory = directory
        self._server = LocalServer(self._handle, context=context)

    def _handle(self, call: Call) -> Reply:
        return self.directory.handle(call, self.authority)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> LocalEntra:
        self._server.start(host, port)
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def authority(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    def admin_consent_url(self, tenant: str, client_id: str) -> str:
        """The link a customer's administrator opens (Entra: https://login.microsoftonline.com/...)."""
        return f"{self.authority}/{tenant}/adminconsent?{urlencode({'client_id': client_id})}"

    def __enter__(self) -> LocalEntra:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
