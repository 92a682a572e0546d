"""A local certificate authority and a server certificate for 127.0.0.1 and localhost.

Bearer tokens only travel over TLS: azure-core's `BearerTokenCredentialPolicy` refuses to send one to
an `http://` URL, Azure Storage only takes them over HTTPS, azure-identity only talks to an `https://`
authority, and Azurite's `--oauth basic` needs `--cert`/`--key`. So the local stand-ins that take
tokens (the ADLS Gen2 emulator's HTTPS listener, the local Entra ID, Azurite with OAuth) serve one
certificate signed by a CA made here, and clients trust that CA.

Files in the folder (made on first use, kept while valid, the keys readable by the owner only):

- `ca.pem`: the CA certificate. Give it to a client as `connection_verify=<path>` (azure-core).
- `ca-bundle.pem`: the public CAs of `certifi` followed by the local CA. Point `REQUESTS_CA_BUNDLE`
  at it and every `requests`-based client (the Azure SDKs, azure-identity) trusts the local
  endpoints and still every public one.
- `server.pem`, `server-key.pem`: the server certificate (SAN 127.0.0.1, ::1, localhost) and its key.
- `ca-key.pem`: the CA's key, only to sign a new server certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest lifetime Apple platforms accept for a TLS server certificate
RENEW_BEFORE = datetime.timedelta(days=30)
HOSTS = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates; the server signs its handshakes (ECDHE) and may agree keys."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=not ca, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signals-export local development CA")])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _make_server(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    names: list[x509.GeneralName] = [x509.DNSName(host) for host in HOSTS]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ADDRESSES]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=SERVER_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def _valid(certificate: x509.Certificate) -> bool:
    return certificate.not_valid_after_utc - RENEW_BEFORE > _now()


@dataclass(frozen=True)
class LocalTls:
    """The files of the local CA and server certificate in one folder (see the module's docstring)."""

    folder: Path

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_bundle(self) -> Path:
        return self.folder / "ca-bundle.pem"

    @property
    def cert_file(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key_file(self) -> Path:
        return self.folder / "server-key.pem"

    @property
    def _ca_key_file(self) -> Path:
        return self.folder / "ca-key.pem"

    @classmethod
    def ensure(cls, folder: Path) -> LocalTls:
        """The CA and server certificate in `folder`: read back while valid, else made anew."""
        tls = cls(Path(folder))
        tls._ensure()
        return tls

    def _ensure(self) -> None:
        ca_key, ca = self._load_ca()
        if ca_key is None or ca is None:
            ca_key, ca = _make_ca()
            _write_private(self._ca_key_file, _key_pem(ca_key))
            self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
            self.cert_file.unlink(missing_ok=True)
        if not self._server_valid(ca):
            key, server = _make_server(ca_key, ca)
            _write_private(self.key_file, _key_pem(key))
            self.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        self._write_bundle(ca)

    def _load_ca(self) -> tuple[ec.EllipticCurvePrivateKey | None, x509.Certificate | None]:
        try:
            ca = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
            key = serialization.load_pem_private_key(self._ca_key_file.read_bytes(), password=None)
        except (OSError, ValueError):
            return None, None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not _valid(ca):
            return None, None
        return key, ca

    def _server_valid(self, ca: x509.Certificate) -> bool:
        try:
            server = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            self.key_file.stat()
        except (OSError, ValueError):
            return False
        return server.issuer == ca.subject and _valid(server)

    def _write_bundle(self, ca: x509.Certificate) -> None:
        import certifi

        public = Path(certifi.where()).read_bytes()
        bundle = public.rstrip(b"\n") + b"\n" + ca.public_bytes(serialization.Encoding.PEM)
        if not self.ca_bundle.exists() or self.ca_bundle.read_bytes() != bundle:
            self.ca_bundle.write_bytes(bundle)

    def bundle_with(self, other: Path) -> Path:
        """A bundle of another one's CAs (a machine's REQUESTS_CA_BUNDLE) and the local CA: what to
        trust when the machine already names a bundle (`ca-bundle-machine.pem`)."""
        bundle = self.folder / "ca-bundle-machine.pem"
        text = other.read_bytes().rstrip(b"\n") + b"\n" + self.ca_file.read_bytes()
        if not bundle.exists() or bundle.read_bytes() != text:
            bundle.write_bytes(text)
        return bundle

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context with the local server certificate (TLS 1.2 and later)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the local CA only (for checks and tests)."""
        return ssl.create_default_context(cafile=str(self.ca_file))
