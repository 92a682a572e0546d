"""The local stack the storage measurements run on: Azurite and the ADLS Gen2 emulator, as the tests
start them (tests/conftest.py), plus the service's Runtime on top.

The ADLS Gen2 emulator runs in a process of its own (`python -m devstack.adls_emulator`), not in a
thread of the benchmark, so that it does not share the benchmark's GIL; its request log is read over
its control endpoint (`/__emulator/requests`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import azure.functions as func
from azure.storage.blob import BlobServiceClient
from azure.storage.filedatalake import DataLakeServiceClient

from devstack.azurite import ACCOUNT, KEY, Azurite, free_port
from devstack.events import HubContext, HubEvent
from devstack.events import trigger_events as hub_trigger_events
from devstack.functions import indexed
from shared.model import AdlsDestination, BlobDestination, Destination, Export, Granularity, Secret
from shared.requests import RequestCounter
from shared.runtime import Runtime
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BLOB_CUSTOMER = "benchblob"
BLOB_CUSTOMER_KEY = base64.b64encode(b"bench customer blob account key01").decode()
LAKE_CUSTOMER = "benchlake"
LAKE_CUSTOMER_KEY = base64.b64encode(b"bench customer lake account key01").decode()
SERVICE_KEY = base64.b64encode(b"b" * 32).decode()


class LakeProcess:
    """The ADLS Gen2 emulator in a child process, with the customer's lake account."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.adls_emulator",
                "--port",
                str(self.port),
                "--account",
                f"{LAKE_CUSTOMER}:{LAKE_CUSTOMER_KEY}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if "listening" not in line:
            error = self._process.stderr.read() if self._process.stderr else ""
            raise RuntimeError(f"the ADLS Gen2 emulator did not start: {line}{error}"[:800])

    def url(self, account: str = LAKE_CUSTOMER) -> str:
        return f"http://127.0.0.1:{self.port}/{account}"

    def _control(self, method: str, path: str) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/__emulator/{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback only)
            body = answer.read()
        return json.loads(body) if body else None

    def requests(self) -> list[dict[str, Any]]:
        """The emulator's request log: method, operation, account, path and status of each request."""
        return list(self._control("GET", "requests"))

    def reset_requests(self) -> None:
        self._control("DELETE", "requests")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdout, self._process.stderr):
            if stream:
                stream.close()


@dataclass
class Stack:
    """Azurite (the service's storage and a customer's Blob account) and the ADLS Gen2 emulator."""

    azurite: Azurite
    lake: LakeProcess
    location: Path
    counter: RequestCounter = field(default_factory=RequestCounter)

    @classmethod
    def start(cls) -> Stack:
        location = Path(tempfile.mkdtemp(prefix="bench-azurite-"))
        azurite = Azurite(location=location, accounts={ACCOUNT: KEY, BLOB_CUSTOMER: BLOB_CUSTOMER_KEY})
        azurite.start()
        try:
            lake = LakeProcess()
        except BaseException:
            azurite.close()
            raise
        stack = cls(azurite, lake, location)
        stack.counter = RequestCounter(
            {
                f":{lake.port}/": "lake",
                f":{azurite.blob_port}/{BLOB_CUSTOMER}": "customer-blob",
                f":{azurite.blob_port}/{ACCOUNT}": "service-blob",
                f":{azurite.table_port}/": "table",
                f":{azurite.queue_port}/": "queue",
            }
        )
        return stack

    def stop(self) -> None:
        self.lake.stop()
        # Azurite waits for the SDKs' idle keep-alive connections before it exits on SIGTERM (10 s,
        # then Azurite.stop kills it). Its data is thrown away, so end it at once.
        process = getattr(self.azurite, "_process", None)
        if process is not None:
            process.kill()
        self.azurite.close()
        shutil.rmtree(self.location, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- the service --------------------------------------------------------------------------

    def settings(self, hub: str | None = None) -> Settings:
        return Settings(
            storage_connection=self.azurite.connection_string(),
            eventhub_name=hub or f"hub{uuid.uuid4().hex[:10]}",
            key_encryption_key=SERVICE_KEY,
            allowed_storage_suffixes=(".core.windows.net", "127.0.0.1"),
        )

    def environment(self, hub: str) -> dict[str, str]:
        """The app settings of a Functions process on this stack (for fresh subprocesses)."""
        return {
            "AzureWebJobsStorage": self.azurite.connection_string(),
            "EVENTHUB_NAME": hub,
            "KEY_ENCRYPTION_KEY": SERVICE_KEY,
            "ALLOWED_STORAGE_SUFFIXES": ".core.windows.net,127.0.0.1",
            "AZURE_FUNCTIONS_ENVIRONMENT": "Development",
        }

    def runtime(self, hub: str | None = None, *, counted: bool = False) -> Runtime:
        runtime = Runtime(self.settings(hub), request_hook=self.counter if counted else None)
        runtime.provision()
        return runtime

    # -- customers' destinations --------------------------------------------------------------

    def adls(self, filesystem: str, directory: str = "signals") -> AdlsDestination:
        return AdlsDestination(self.lake.url(), filesystem, directory, Secret(LAKE_CUSTOMER_KEY))

    def blob(self, container: str) -> BlobDestination:
        return BlobDestination(self.azurite.url("blob", BLOB_CUSTOMER), container, Secret(BLOB_CUSTOMER_KEY))

    def lake_service(self) -> DataLakeServiceClient:
        return DataLakeServiceClient(
            self.lake.url(), credential={"account_name": LAKE_CUSTOMER, "account_key": LAKE_CUSTOMER_KEY}
        )

    def blob_service(self) -> BlobServiceClient:
        return BlobServiceClient(
            self.azurite.url("blob", BLOB_CUSTOMER),
            credential={"account_name": BLOB_CUSTOMER, "account_key": BLOB_CUSTOMER_KEY},
        )

    def lines(self, destination: Destination) -> Counter[bytes]:
        """Every line in a destination's files, read back with the SDKs as the customer would."""
        found: Counter[bytes] = Counter()
        if isinstance(destination, AdlsDestination):
            fs = self.lake_service().get_file_system_client(destination.filesystem)
            for path in fs.get_paths(recursive=True):
                if not path.is_directory:
                    found.update(fs.get_file_client(path.name).download_file().readall().splitlines())
        else:
            container = self.blob_service().get_container_client(destination.container)
            for blob in container.list_blobs():
                found.update(container.download_blob(blob.name).readall().splitlines())
        return found


def create_export(
    runtime: Runtime,
    project: str,
    export_id: str,
    destination: Destination,
    *,
    signals: Sequence[str] | None = None,
    granularity: Granularity = Granularity.HOUR,
) -> Export:
    """Configure an export as the management API does: stored, destination prepared."""
    export = Export(
        project, export_id, destination, None if signals is None else frozenset(signals), granularity
    )
    runtime.destinations.prepare(destination)
    runtime.exports.put(export)
    runtime.registry.invalidate()
    return export


# -- batches as the Functions worker hands them to export_signals ----------------------------------


@dataclass(frozen=True)
class Sent:
    body: bytes
    project: str
    sequence: int
    enqueued: datetime


def trigger_events(partition: str, sent: Sequence[Sent], hub: str = "signals") -> list[func.EventHubEvent]:
    """The `list[EventHubEvent]` the worker builds for a cardinality-many trigger (devstack.events)."""
    events = [HubEvent(e.body, {"projectId": e.project}, e.sequence, e.enqueued) for e in sent]
    return hub_trigger_events(partition, events, HubContext(hub=hub))


def registered(name: str) -> Callable[..., Any]:
    """A function as `function_app.py` registers it: what the host calls."""
    return indexed()[name].get_user_function()  # type: ignore[no-any-return]


def run_python(code_or_args: list[str], env: dict[str, str] | None = None) -> str:
    """Run the project's Python in a fresh process at the repository root; its last line of output."""
    done = subprocess.run(
        [sys.executable, *code_or_args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{code_or_args[:2]} failed: {done.stderr.strip()[-800:]}")
    return done.stdout.strip().splitlines()[-1]
