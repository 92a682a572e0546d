"""Development access tokens: RS256 JWTs shaped like Microsoft Entra ID's, signed with a local key
pair whose public JWKS the local host trusts.

    python -m devstack.tokens --project myproject --role contributor   # prints a token
    python -m devstack.tokens --settings                              # the host's AUTH_* settings

The key pair is made on first use in `.data/devstack/` (ignored by git), with its public JWKS beside
it; point the local host's `AUTH_JWKS` at that file (`--settings` prints the lines). Tests make a key
pair of their own with `TokenIssuer.generate()`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import jwt
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
KEY_DIR = ROOT / ".data" / "devstack"
KEY_FILE = KEY_DIR / "dev-token-key.pem"
JWKS_FILE = KEY_DIR / "dev-jwks.json"
DEV_ISSUER = "https://login.signals-export.localhost/dev/v2.0"
DEV_AUDIENCE = "api://signals-export-dev"
ROLE_LEVELS = {"reader": "Read", "contributor": "Write", "owner": "Owner"}


def roles_for(projects: Sequence[str], role: str) -> list[str]:
    """The app roles of a role name on projects: `contributor` on `p1` is `Exports.Write.p1`."""
    if role == "admin":
        return ["Exports.Admin"]
    level = ROLE_LEVELS[role]
    return [f"Exports.{level}.{project}" for project in projects]


def _b64url(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class TokenIssuer:
    """Mints tokens with one RSA key; `jwks` is what the API must be given to trust them."""

    private_key: rsa.RSAPrivateKey
    issuer: str = DEV_ISSUER
    audience: str = DEV_AUDIENCE

    @classmethod
    def generate(cls, *, issuer: str = DEV_ISSUER, audience: str = DEV_AUDIENCE) -> TokenIssuer:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), issuer, audience)

    @classmethod
    def load_or_create(cls, path: Path = KEY_FILE) -> TokenIssuer:
        """The development key pair, made on first use; its JWKS is written beside it."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} does not hold an RSA private key")
            issuer = cls(key)
        else:
            issuer = cls.generate()
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = issuer.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
        issuer.write_jwks(path.with_name(JWKS_FILE.name))
        return issuer

    @property
    def _public_numbers(self) -> rsa.RSAPublicNumbers:
        return self.private_key.public_key().public_numbers()

    @property
    def kid(self) -> str:
        """The key's RFC 7638 thumbprint."""
        numbers = self._public_numbers
        canonical = json.dumps(
            {"e": _b64url(numbers.e), "kty": "RSA", "n": _b64url(numbers.n)}, separators=(",", ":")
        )
        return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")

    @property
    def jwks(self) -> dict[str, Any]:
        numbers = self._public_numbers
        key = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url(numbers.n),
            "e": _b64url(numbers.e),
        }
        return {"keys": [key]}

    def write_jwks(self, path: Path = JWKS_FILE) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.jwks, indent=2) + "\n")
        return path

    def mint(
        self,
        roles: Sequence[str],
        *,
        subject: str = "dev-user",
        lifetime: float = 3600.0,
        issued_at: float | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed access token with these app roles."""
        now = int(time.time() if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "iss": self.issuer if issuer is None else issuer,
            "aud": self.audience if audience is None else audience,
            "sub": subject,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"signals-export-dev:{subject}")),
            "iat": now,
            "nbf": now,
            "exp": int(now + lifetime),
            "roles": list(roles),
            "ver": "2.0",
            **(extra or {}),
        }
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})

    def settings(self, jwks_path: Path = JWKS_FILE) -> dict[str, str]:
        """The local host's settings that make it trust these tokens."""
        return {"AUTH_ISSUER": self.issuer, "AUTH_AUDIENCE": self.audience, "AUTH_JWKS": str(jwks_path)}


class Role(StrEnum):
    """The role a development token grants: on the projects given, or `admin` on every project."""

    READER = "reader"
    CONTRIBUTOR = "contributor"
    OWNER = "owner"
    ADMIN = "admin"


PROG = "python -m devstack.tokens"
app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.command(help=__doc__.split("\n\n")[0])
def token(
    project: Annotated[list[str] | None, typer.Option(help="A project to grant (repeatable).")] = None,
    role: Annotated[
        Role, typer.Option(help="The role on the projects; admin: every project.")
    ] = Role.CONTRIBUTOR,
    subject: Annotated[str, typer.Option(help="Who the token names.")] = "dev-user",
    minutes: Annotated[float, typer.Option(help="How long the token lasts.")] = 60.0,
    settings: Annotated[
        bool, typer.Option("--settings", help="Print the host's AUTH_* settings instead.")
    ] = False,
    key_file: Annotated[
        Path, typer.Option(help="The key pair (made if missing), its JWKS beside it.")
    ] = KEY_FILE,
) -> None:
    issuer = TokenIssuer.load_or_create(key_file)
    if settings:
        print(json.dumps(issuer.settings(key_file.with_name(JWKS_FILE.name)), indent=2))
        return
    if role != Role.ADMIN and not project:
        raise typer.BadParameter("is required (or --role admin)", param_hint="'--project'")
    print(issuer.mint(roles_for(project or [], role), subject=subject, lifetime=minutes * 60))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m devstack.tokens` on `argv` (default: the process's arguments); its exit status."""
    try:
        app(args=None if argv is None else list(argv), prog_name=PROG)
    except SystemExit as finished:
        return finished.code if isinstance(finished.code, int) else int(finished.code is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
