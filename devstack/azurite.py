"""Azurite (blob, queue, table) for development and tests, started from the project's node_modules.

With `tls=` (the local CA's certificate, `devstack.local_tls`) Azurite serves HTTPS, and with
`oauth=True` also takes bearer tokens (`--oauth basic`, which needs HTTPS). Azurite's basic OAuth
checks only a token's issuer prefix (`https://sts.windows.net/` and the national clouds), audience
(`https://storage.azure.com` or the account's blob endpoint) and lifetime, with 403
AuthenticationFailed: not its signature, its tenant nor any role
(azurite src/blob/authentication/BlobTokenAuthenticator.ts, 3.37). `blob_only=True` runs just the
Blob service (`azurite-blob`), for a customer account beside the service's own storage.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteMissing(RuntimeError):
    """Azurite is not installed: run `npm ci` at the repository root (scripts/test does)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Azurite:
    """One Azurite process. `accounts` maps account names to keys (Azurite's AZURITE_ACCOUNTS)."""

    location: Path | None = None
    accounts: dict[str, str] = field(default_factory=lambda: {ACCOUNT: KEY})
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    tls: Any = None  # a devstack.local_tls.LocalTls: serve HTTPS with its certificate
    oauth: bool = False  # take bearer tokens (--oauth basic); needs tls
    blob_only: bool = False  # only the Blob service (azurite-blob)
    in_memory: bool = False  # keep nothing on disk (--inMemoryPersistence): no 5-second saves of every table
    _process: subprocess.Popen[bytes] | None = None
    _own_location: bool = False

    def start(self) -> Azurite:
        binary = ROOT / "node_modules" / ".bin" / ("azurite-blob" if self.blob_only else "azurite")
        if self.oauth and self.tls is None:
            raise ValueError("Azurite takes bearer tokens only over HTTPS: give tls= with oauth=True")
        if not binary.exists():
            raise AzuriteMissing(f"{binary} not found: run `npm ci` in {ROOT}")
        if shutil.which("node") is None:
            raise AzuriteMissing("Node.js is not installed: Azurite needs it (Node 18 or later)")
        if self.location is None:
            self.location = Path(tempfile.mkdtemp(prefix="azurite-"))
            self._own_location = True
        self.location.mkdir(parents=True, exist_ok=True)
        self.blob_port = self.blob_port or free_port()
        if not self.blob_only:
            self.queue_port = self.queue_port or free_port()
            self.table_port = self.table_port or free_port()
        env = dict(os.environ)
        env["AZURITE_ACCOUNTS"] = ";".join(f"{name}:{key}" for name, key in self.accounts.items())
        arguments = [
            str(binary),
            "--silent",
            "--disableTelemetry",  # offline, Azurite's telemetry also keeps it from exiting on SIGTERM
            "--skipApiVersionCheck",
            "--loose",
            "--disableProductStyleUrl",
            *(["--inMemoryPersistence"] if self.in_memory else ["--location", str(self.location)]),
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
        ]  # fmt: skip
        if not self.blob_only:
            arguments += ["--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port)]
            arguments += ["--tableHost", "127.0.0.1", "--tablePort", str(self.table_port)]
        if self.tls is not None:
            arguments += ["--cert", str(self.tls.cert_file), "--key", str(self.tls.key_file)]
        if self.oauth:
            arguments += ["--oauth", "basic"]
        self._process = subprocess.Popen(
            arguments,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        ports = (self.blob_port,) if self.blob_only else (self.blob_port, self.queue_port, self.table_port)
        for port in ports:
            while True:
                if self._process is not None and self._process.poll() is not None:
                    error = self._process.stderr.read().decode() if self._process.stderr else ""
                    raise RuntimeError(f"Azurite exited at start: {error.strip()[:500]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"Azurite did not listen on port {port} in {timeout} s") from None
                    time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None

    def restart(self, accounts: dict[str, str] | None = None) -> None:
        """Stop and start on the same ports and data, optionally with other account keys."""
        self.stop()
        if accounts is not None:
            self.accounts = accounts
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_location and self.location is not None:
            shutil.rmtree(self.location, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self.start() if self._process is None else self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def url(self, service: str, account: str = ACCOUNT) -> str:
        port = {"blob": self.blob_port, "queue": self.queue_port, "table": self.table_port}[service]
        return f"{self.scheme}://127.0.0.1:{port}/{account}"

    def connection_string(self, account: str = ACCOUNT) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};"
            f"AccountName={account};AccountKey={self.accounts[account]};"
            f"BlobEndpoint={self.url('blob', account)};"
            f"QueueEndpoint={self.url('queue', account)};"
            f"TableEndpoint={self.url('table', account)};"
        )
