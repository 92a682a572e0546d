"""Sending signals: to a real Event Hub, or to the local host.

- `EventHubTarget`: `azure-eventhub`'s `EventHubProducerClient`. Batches are filled to the hub's
  size limit (`create_batch()`, then `add()` until it raises ValueError: the batch is full, so it is
  sent and a new one started); each event's `projectId` is an application property.
- `LocalTarget`: the local host's `POST /_local/signals` (NDJSON, in chunks); `wait()` returns once
  the host has exported every signal it accepted.

Messages come from `devstack.sources` (`read_ndjson`, `generated`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import httpx

from devstack.errors import DevstackError
from devstack.sources import Message, check_reachable, connection_parts, describe_hub

Progress = Callable[[int], None]


def chunks(messages: Iterable[Message], size: int) -> Iterator[list[Message]]:
    chunk: list[Message] = []
    for message in messages:
        chunk.append(message)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class HostUnreachable(DevstackError):
    """The local host does not answer."""


class LocalTarget:
    """The local host's development route for signals."""

    def __init__(
        self, url: str = "http://localhost:7071", *, chunk_size: int = 500, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self.chunk_size = chunk_size
        self._client = httpx.Client(base_url=self.url, timeout=timeout)
        self._sent_through: dict[str, int] = {}  # per partition: the last sequence number sent

    def check(self) -> dict[str, Any]:
        try:
            response = self._client.get("/_local/status")
        except httpx.HTTPError as error:
            raise HostUnreachable(
                f"The local host at {self.url} does not answer ({type(error).__name__}). Start it with "
                "`scripts/run host` (or give its address with --url)."
            ) from None
        if response.status_code != 200:
            raise HostUnreachable(
                f"{self.url} is not a local host of this project (HTTP {response.status_code})"
            )
        status: dict[str, Any] = response.json()
        if status.get("source", {}).get("kind") != "local":
            raise DevstackError(
                "The local host reads a real Event Hub: send to the hub instead (--to eventhub)."
            )
        return status

    def send(self, messages: Iterable[Message], progress: Progress | None = None) -> int:
        sent = 0
        for chunk in chunks(messages, self.chunk_size):
            # One request per project, so that each line keeps its own application property.
            by_project: dict[str | None, list[bytes]] = {}
            for body, properties in chunk:
                by_project.setdefault(properties.get("projectId"), []).append(body)
            for project, bodies in by_project.items():
                self._post(project, bodies)
            sent += len(chunk)
            if progress is not None:
                progress(len(chunk))
        return sent

    def _post(self, project: str | None, bodies: list[bytes]) -> None:
        params = {"project": project} if project else {}
        try:
            response = self._client.post(
                "/_local/signals",
                params=params,
                content=b"\n".join(bodies) + b"\n",
                headers={"Content-Type": "application/x-ndjson"},
            )
        except httpx.HTTPError as error:
            raise HostUnreachable(
                f"The local host at {self.url} stopped answering ({type(error).__name__})"
            ) from None
        if response.status_code != 202:
            raise DevstackError(
                f"The local host refused the signals: HTTP {response.status_code} {response.text[:300]}"
            )
        for partition, (_, last) in response.json().get("sequenceNumbers", {}).items():
            self._sent_through[partition] = max(last, self._sent_through.get(partition, -1))

    def pending(self) -> int:
        """How many of the signals this target sent the host has not exported yet."""
        partitions = self._client.get("/_local/status").json()["source"]["partitions"]
        left = 0
        for partition, last in self._sent_through.items():
            through = int(partitions.get(partition, {}).get("deliveredThrough", -1))
            left += max(0, last - through)
        return left

    def wait(self, timeout: float = 120.0, on_tick: Callable[[int], None] | None = None) -> bool:
        """Wait until the host has exported every signal this target sent; False on timeout. (Other
        producers' signals do not hold it up.)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self.pending()
            if on_tick is not None:
                on_tick(left)
            if left == 0:
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        self._client.close()


class ProducerClient(Protocol):
    """What the target calls on azure-eventhub's EventHubProducerClient."""

    def create_batch(self) -> Any: ...

    def send_batch(self, batch: Any, /) -> None: ...

    def close(self) -> None: ...


class EventHubTarget:
    """An Event Hub, written with EventHubProducerClient (or `client`, one that behaves like it)."""

    def __init__(
        self,
        connection: str,
        hub: str = "signals",
        *,
        check_timeout: float = 15.0,
        retries: int = 3,
        client: ProducerClient | None = None,
    ) -> None:
        from azure.eventhub import EventHubProducerClient

        if not connection_parts(connection).get("endpoint"):
            raise DevstackError(
                "The Event Hub connection string has no Endpoint: it looks like "
                "Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=...;SharedAccessKey=..."
            )
        self.hub = connection_parts(connection).get("entitypath") or hub
        self.where = f"{self.hub} at {describe_hub(connection)}"
        options: dict[str, Any] = {"retry_total": retries}
        if "entitypath" not in connection_parts(connection):
            options["eventhub_name"] = hub
        self._connection = connection
        self._check_timeout = check_timeout
        self._client: ProducerClient = client or EventHubProducerClient.from_connection_string(
            connection, **options
        )

    def check(self) -> list[str]:
        """The hub's partitions, or a clear error within the check timeout."""
        from azure.eventhub import EventHubProducerClient

        options: dict[str, Any] = {"retry_total": 0}
        if "entitypath" not in connection_parts(self._connection):
            options["eventhub_name"] = self.hub
        probe = EventHubProducerClient.from_connection_string(self._connection, **options)
        try:
            return check_reachable(probe, self.where, self._check_timeout)
        finally:
            with contextlib.suppress(Exception):
                probe.close()

    def send(self, messages: Iterable[Message], progress: Progress | None = None) -> int:
        from azure.eventhub import EventData

        sent = 0
        batch = self._client.create_batch()
        for body, properties in messages:
            event = EventData(body)
            event.properties = {str(key): value for key, value in properties.items()}
            try:
                batch.add(event)
                continue
            except ValueError:  # the batch is full: send it, start another
                pass
            if len(batch):
                self._client.send_batch(batch)
                sent += len(batch)
                if progress is not None:
                    progress(len(batch))
                batch = self._client.create_batch()
            try:
                batch.add(event)
            except ValueError:
                raise DevstackError(
                    f"A signal of {len(body)} bytes is larger than an Event Hub batch may be "
                    f"({batch.max_size_in_bytes} bytes)"
                ) from None
        if len(batch):
            self._client.send_batch(batch)
            sent += len(batch)
            if progress is not None:
                progress(len(batch))
        return sent

    def close(self) -> None:
        self._client.close()
