"""Where the local host's Event Hub function gets its batches from.

- `EventHubSource`: a real Event Hub (`EventHubConnection` set). An `EventHubConsumerClient` with a
  blob checkpoint store in the service's own storage (container `azure-webjobs-eventhub`, the one the
  Functions host uses), so several local hosts, and Functions instances, share the partitions. Each
  received batch is handed to the function as the worker would; the checkpoint moves only after the
  function returned.
- `LocalHub`: no Event Hub. Signals come from NDJSON (a file, standard input, or the local host's
  `POST /_local/signals`) or are generated; the hub puts each on a partition (round robin, or by
  partition key) with the next sequence number of that partition and its enqueued time, and cuts
  each partition into batches (at most `max_batch_size`; as soon as `min_batch_size` are waiting or
  the oldest waited `max_wait` seconds). Sequence numbers go on across runs (kept in a state file),
  as the ledger expects of a partition.

NDJSON: one signal body per line, sent verbatim. Its project (the `projectId` application property)
is the line's own top-level string field `projectId`, or else the `--project` given; a line with
neither is sent without one, and is dead-lettered (`missing-project`) as on the real service.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import random
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from devstack import timespan
from devstack.errors import DevstackError
from devstack.events import HubContext, HubEvent, from_event_data, trigger_events
from devstack.functions import RetryPolicy

log = logging.getLogger("signals_export.devstack.sources")

PROJECT_FIELD = "projectId"
CHECKPOINT_CONTAINER = "azure-webjobs-eventhub"
Message = tuple[bytes, dict[str, Any]]  # a signal body and its application properties


@dataclass(frozen=True)
class BatchPolicy:
    """host.json `extensions.eventHubs`: how big batches are and how long a partition waits."""

    max_batch_size: int = 512
    min_batch_size: int = 64
    max_wait: float = 5.0
    prefetch: int = 2048  # a real hub's consumer only

    @classmethod
    def from_host_json(cls, path: Path) -> BatchPolicy:
        try:
            raw = json.loads(path.read_text())["extensions"]["eventHubs"]
        except (OSError, ValueError, KeyError):
            return cls()
        return cls(
            max_batch_size=int(raw.get("maxEventBatchSize", cls.max_batch_size)),
            min_batch_size=int(raw.get("minEventBatchSize", cls.min_batch_size)),
            max_wait=timespan.seconds(raw.get("maxWaitTime"), cls.max_wait),
            prefetch=int(raw.get("prefetchCount", cls.prefetch)),
        )


# -- signals in ---------------------------------------------------------------------------------------


def message_of(line: bytes, project: str | None) -> Message | None:
    """One NDJSON line as a message: the body verbatim, the project from the line or the default."""
    body = line.rstrip(b"\r\n")
    if not body.strip():
        return None
    found: Any = None
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            found = parsed.get(PROJECT_FIELD)
    except ValueError:
        pass  # not JSON: sent all the same, and dead-lettered by the function
    chosen = found if isinstance(found, str) and found else project
    return body, ({PROJECT_FIELD: chosen} if chosen else {})


def read_ndjson(stream: IO[bytes] | Iterable[bytes], project: str | None = None) -> Iterator[Message]:
    """The messages of an NDJSON stream (blank lines skipped)."""
    for line in stream:
        message = message_of(line, project)
        if message is not None:
            yield message


def generated(
    projects: Sequence[str],
    names: Sequence[str] = ("pageView", "click", "purchase", "error"),
    *,
    count: int | None = None,
    rate: float = 0.0,
    run: str | None = None,
    seed: int | None = None,
) -> Iterator[Message]:
    """Made-up signals over the projects and names, `rate` per second (0: as fast as asked), `count` in
    all (None: without end). Each body carries a unique `id` (`<run>-<n>`)."""
    run = run or uuid.uuid4().hex[:8]
    rng = random.Random(seed)
    started = time.monotonic()
    numbers: Iterable[int] = range(count) if count is not None else itertools.count()
    for n in numbers:
        if rate > 0:
            due = started + n / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        project = projects[n % len(projects)]
        body = {
            "name": names[rng.randrange(len(names))],
            "id": f"{run}-{n}",
            PROJECT_FIELD: project,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "durationMs": rng.randrange(1, 2000),
        }
        yield json.dumps(body, separators=(",", ":")).encode(), {PROJECT_FIELD: project}


# -- the local hub ------------------------------------------------------------------------------------


@dataclass
class PartitionStats:
    received: int = 0
    delivered: int = 0
    delivered_through: int = -1  # the sequence number of the last event delivered
    batches: int = 0
    failed_invocations: int = 0
    last_error: str = ""


@dataclass
class _Partition:
    next_sequence: int = 0
    waiting: deque[HubEvent] = field(default_factory=deque)
    in_flight: int = 0
    stats: PartitionStats = field(default_factory=PartitionStats)


class LocalHub:
    """Partitions of events in memory, numbered and timed like an Event Hub's."""

    def __init__(
        self,
        partitions: int = 4,
        *,
        state_file: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if partitions < 1:
            raise ValueError("a hub has at least one partition")
        self.partition_ids = [str(i) for i in range(partitions)]
        self._partitions = {pid: _Partition() for pid in self.partition_ids}
        self._state_file = state_file
        self._clock = clock
        self._round_robin = itertools.cycle(self.partition_ids)
        self._changed = threading.Condition()
        self._closed = False
        self._load()

    def _load(self) -> None:
        if self._state_file is None or not self._state_file.exists():
            return
        try:
            saved = json.loads(self._state_file.read_text())["nextSequence"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        for pid, number in saved.items():
            if pid in self._partitions:
                self._partitions[pid].next_sequence = int(number)

    def _save(self) -> None:
        if self._state_file is None:
            return
        state = {"nextSequence": {pid: p.next_sequence for pid, p in self._partitions.items()}}
        temp = self._state_file.with_suffix(".tmp")
        temp.write_text(json.dumps(state))
        temp.replace(self._state_file)

    def partition_for(self, partition_key: str | None) -> str:
        if partition_key is None:
            return next(self._round_robin)
        return self.partition_ids[zlib.crc32(partition_key.encode()) % len(self.partition_ids)]

    def send(
        self, messages: Iterable[Message], partition_key: str | None = None
    ) -> list[tuple[str, HubEvent]]:
        """Append messages; each gets its partition's next sequence number and the time now. Returns
        each one's partition and event."""
        placed: list[tuple[str, HubEvent]] = []
        with self._changed:
            for body, properties in messages:
                pid = self.partition_for(partition_key)
                partition = self._partitions[pid]
                event = HubEvent(
                    body=body,
                    properties=dict(properties),
                    sequence=partition.next_sequence,
                    enqueued=self._clock(),
                    offset=str(partition.next_sequence),
                    partition_key=partition_key,
                )
                partition.next_sequence += 1
                partition.waiting.append(event)
                partition.stats.received += 1
                placed.append((pid, event))
            if placed:
                self._save()
                self._changed.notify_all()
        return placed

    def next_batch(self, partition: str, policy: BatchPolicy, stop: threading.Event) -> list[HubEvent]:
        """Wait for a batch of the partition: `max_batch_size` at most; as soon as `min_batch_size` are
        waiting, or the oldest has waited `max_wait` seconds. Empty when the hub closes or `stop` is set."""
        state = self._partitions[partition]
        with self._changed:
            while not (self._closed or stop.is_set()):
                if state.waiting:
                    oldest = state.waiting[0].enqueued
                    waited = (self._clock() - oldest).total_seconds()
                    if len(state.waiting) >= policy.min_batch_size or waited >= policy.max_wait:
                        size = min(policy.max_batch_size, len(state.waiting))
                        batch = list(itertools.islice(state.waiting, 0, size))
                        state.in_flight = len(batch)
                        return batch
                    self._changed.wait(timeout=min(0.1, max(0.01, policy.max_wait - waited)))
                else:
                    self._changed.wait(timeout=0.1)
        return []

    def checkpoint(self, partition: str, batch: Sequence[HubEvent]) -> None:
        """The function returned for this batch: its events are done."""
        state = self._partitions[partition]
        with self._changed:
            for _ in batch:
                state.waiting.popleft()
            state.in_flight = 0
            state.stats.delivered += len(batch)
            if batch:
                state.stats.delivered_through = batch[-1].sequence
            state.stats.batches += 1
            self._changed.notify_all()

    def failed(self, partition: str, error: BaseException) -> None:
        with self._changed:
            stats = self._partitions[partition].stats
            stats.failed_invocations += 1
            stats.last_error = f"{type(error).__name__}: {error}"[:500]

    def pending(self) -> int:
        """Events received and not yet delivered (waiting or in a running invocation)."""
        with self._changed:
            return sum(len(p.waiting) for p in self._partitions.values())

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every event was delivered; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while any(p.waiting for p in self._partitions.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(timeout=min(left, 0.5))
        return True

    def status(self) -> dict[str, Any]:
        with self._changed:
            return {
                "partitions": {
                    pid: {
                        "nextSequence": p.next_sequence,
                        "waiting": len(p.waiting),
                        "received": p.stats.received,
                        "delivered": p.stats.delivered,
                        "deliveredThrough": p.stats.delivered_through,
                        "batches": p.stats.batches,
                        "failedInvocations": p.stats.failed_invocations,
                        "lastError": p.stats.last_error or None,
                    }
                    for pid, p in self._partitions.items()
                },
                "pending": sum(len(p.waiting) for p in self._partitions.values()),
            }

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


# -- invoking the function ------------------------------------------------------------------------------


def invoke_with_retry(
    call: Callable[[], None],
    policy: RetryPolicy | None,
    stop: threading.Event,
    *,
    on_failure: Callable[[BaseException, int], None] | None = None,
) -> bool:
    """Call the function; on an exception, retry as its `@app.retry` policy says. False: gave up or
    stopped (the batch is then not checkpointed)."""
    attempt = 0
    while not stop.is_set():
        try:
            call()
            return True
        except Exception as error:
            attempt += 1
            if on_failure is not None:
                on_failure(error, attempt)
            delay = policy.delay_before(attempt) if policy is not None else None
            if delay is None:
                # Like the host: the checkpoint still moves on (the function's own policy says retry).
                log.exception("the function failed and its retry policy gave up", exc_info=error)
                return True
            log.warning(
                "the function failed; retrying",
                extra={"attempt": attempt, "delay": delay, "error": f"{type(error).__name__}: {error}"},
            )
            if stop.wait(delay):
                return False
    return False


class LocalPump:
    """One thread per partition of a LocalHub, each calling the function with its batches in order."""

    def __init__(
        self,
        hub: LocalHub,
        handler: Callable[[list[Any]], Any],
        *,
        policy: BatchPolicy,
        retry: RetryPolicy | None,
        context: HubContext,
    ) -> None:
        self.hub = hub
        self._handler = handler
        self._policy = policy
        self._retry = retry
        self._context = context
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for pid in self.hub.partition_ids:
            thread = threading.Thread(target=self._run, args=(pid,), name=f"partition-{pid}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, partition: str) -> None:
        while not self._stop.is_set():
            batch = self.hub.next_batch(partition, self._policy, self._stop)
            if not batch:
                continue
            events = trigger_events(partition, batch, self._context)
            done = invoke_with_retry(
                functools.partial(self._handler, events),
                self._retry,
                self._stop,
                on_failure=lambda error, _: self.hub.failed(partition, error),
            )
            if done:
                self.hub.checkpoint(partition, batch)

    def stop(self) -> None:
        self._stop.set()
        self.hub.close()
        for thread in self._threads:
            thread.join(timeout=30)


# -- a real Event Hub ---------------------------------------------------------------------------------


def connection_parts(connection: str) -> dict[str, str]:
    """The `Key=Value;` parts of an Event Hubs connection string."""
    parts: dict[str, str] = {}
    for item in connection.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts


class EventHubUnreachable(DevstackError):
    """The Event Hub named by the connection cannot be reached or refused us."""


def describe_hub(connection: str) -> str:
    endpoint = connection_parts(connection).get("endpoint", "?")
    return endpoint.removeprefix("sb://").rstrip("/")


def check_reachable(client: Any, what: str, timeout: float) -> list[str]:
    """The hub's partition ids, or a clear EventHubUnreachable within `timeout` seconds."""
    result: dict[str, Any] = {}

    def ask() -> None:
        try:
            result["ids"] = list(client.get_partition_ids())
        except Exception as error:  # noqa: BLE001 - passed on: the caller names the hub it could not reach
            result["error"] = error

    thread = threading.Thread(target=ask, name="eventhub-check", daemon=True)
    thread.start()
    thread.join(timeout)
    if "ids" in result:
        return list(result["ids"])
    error = result.get("error")
    reason = (
        f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        if error is not None
        else f"no answer in {timeout:g} s"
    )
    with contextlib.suppress(Exception):
        client.close()
    raise EventHubUnreachable(
        f"The Event Hub {what} cannot be reached ({reason}). Check the connection string "
        "(EventHubConnection or --connection), the hub name (EVENTHUB_NAME) and your network, "
        "or unset EventHubConnection to use the local source."
    )


def consumer_client(
    connection: str, hub: str, consumer_group: str, *, checkpoint_store: Any = None, retries: int = 3
) -> Any:
    from azure.eventhub import EventHubConsumerClient

    options: dict[str, Any] = {"retry_total": retries, "checkpoint_store": checkpoint_store}
    if "entitypath" not in connection_parts(connection):
        options["eventhub_name"] = hub
    return EventHubConsumerClient.from_connection_string(connection, consumer_group=consumer_group, **options)


def hub_name_of(connection: str, default: str) -> str:
    return connection_parts(connection).get("entitypath") or default


class EventHubSource:
    """Reads a real Event Hub and calls the function per received batch, checkpointing after it."""

    def __init__(
        self,
        *,
        connection: str,
        hub: str,
        consumer_group: str,
        storage_connection: str,
        handler: Callable[[list[Any]], Any],
        policy: BatchPolicy,
        retry: RetryPolicy | None,
        check_timeout: float = 15.0,
    ) -> None:
        self.connection = connection
        self.hub = hub_name_of(connection, hub)
        self.consumer_group = consumer_group
        self.storage_connection = storage_connection
        self._handler = handler
        self._policy = policy
        self._retry = retry
        self._check_timeout = check_timeout
        self._stop = threading.Event()
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self.partition_ids: list[str] = []
        self.delivered = 0

    @property
    def namespace(self) -> str:
        return describe_hub(self.connection).split(":")[0]

    def check(self) -> list[str]:
        """Fail fast, with a clear message, when the hub cannot be reached."""
        probe = consumer_client(self.connection, self.hub, self.consumer_group, retries=0)
        try:
            self.partition_ids = check_reachable(
                probe, f"{self.hub} at {describe_hub(self.connection)}", self._check_timeout
            )
        finally:
            with contextlib.suppress(Exception):
                probe.close()
        return self.partition_ids

    def start(self) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
        from azure.storage.blob import BlobServiceClient

        container = BlobServiceClient.from_connection_string(self.storage_connection).get_container_client(
            CHECKPOINT_CONTAINER
        )
        try:
            container.create_container()
        except ResourceExistsError:
            pass
        store = BlobCheckpointStore.from_connection_string(self.storage_connection, CHECKPOINT_CONTAINER)
        self._client = consumer_client(self.connection, self.hub, self.consumer_group, checkpoint_store=store)
        self._thread = threading.Thread(target=self._receive, name="eventhub-receive", daemon=True)
        self._thread.start()

    def deliver_batch(self, partition_context: Any, received: list[Any] | None) -> None:
        """One received batch: the function gets it as the worker would build it; the checkpoint moves
        to its last event only once the function returned (retrying as its policy says)."""
        if not received or self._stop.is_set():
            return  # max_wait_time passed with nothing received
        partition = str(partition_context.partition_id)
        context = HubContext(self.hub, self.consumer_group, self.namespace)
        events = trigger_events(partition, [from_event_data(e) for e in received], context)
        if invoke_with_retry(functools.partial(self._handler, events), self._retry, self._stop):
            partition_context.update_checkpoint(received[-1])
            self.delivered += len(received)

    def _receive(self) -> None:
        def on_error(partition_context: Any, error: Exception) -> None:
            where = getattr(partition_context, "partition_id", None)
            log.warning("event hub receive error", extra={"partition": where, "error": str(error)[:300]})

        try:
            self._client.receive_batch(
                on_event_batch=self.deliver_batch,
                on_error=on_error,
                max_batch_size=self._policy.max_batch_size,
                max_wait_time=self._policy.max_wait,
                prefetch=self._policy.prefetch,
                starting_position="-1",
            )
        except Exception:
            if not self._stop.is_set():
                log.exception("event hub receiving stopped")

    def stop(self) -> None:
        self._stop.set()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        if self._thread is not None:
            self._thread.join(timeout=30)
