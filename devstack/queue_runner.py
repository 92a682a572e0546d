"""A queue trigger without the Functions host: the Storage Queues extension's semantics (5.x, as in
extension bundle 4.x), for the local host and tests. Each rule cites its source in docs/conformance.md
("Queue trigger"); the extension's own names are in brackets.

- Up to `batch_size` messages are received at once, each with a 10-minute visibility timeout that is
  renewed at half-time while the function runs [QueueListener]. A new batch is fetched when no more
  than `new_batch_threshold` messages are still running [WaitForNewBatchThreshold].
- The message text is decoded as host.json's `messageEncoding` says, `base64` by default [QueuesOptions].
  A message that does not decode is moved to `<queue>-poison` as it is, without calling the function
  [QueueServiceClientProvider, MessageDecodingFailed].
- The function gets the body as the host binds it for a worker, a string (the decoded bytes as UTF-8),
  with the trigger metadata; the worker's own converter builds the `func.QueueMessage`.
- A message already dequeued more than `max_dequeue_count` times goes to poison before any call
  [QueueProcessor.BeginProcessingMessageAsync].
- When the function fails (raises, or runs past `function_timeout`), a message dequeued
  `max_dequeue_count` times is copied to poison, encoded like the queue's messages, and deleted; any
  other becomes visible again after `retry_delay` (host.json `visibilityTimeout`)
  [QueueProcessor.CompleteProcessingMessageAsync].

One divergence, on purpose: a function past its timeout is not stopped (a thread cannot be), while the
Functions host restarts the worker process. The message is retried all the same, so a timed-out
invocation may still be running when the retry starts, which is harder on the code than Azure is.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions import meta
from azure.functions.queue import QueueMessageInConverter
from azure.storage.queue import QueueClient, QueueMessage

log = logging.getLogger("signals_export.devstack.queue")

LEASE_SECONDS = 600  # QueueListener: `_visibilityTimeout = TimeSpan.FromMinutes(10)`
MAX_BATCH_SIZE = 32  # QueuesOptions.MaxBatchSize: the most one Get Messages returns
ENCODINGS = ("base64", "none")  # QueueMessageEncoding: Base64 (the default), None
_WHITESPACE = str.maketrans("", "", " \t\r\n")  # Convert.FromBase64String ignores these


class UndecodableMessage(ValueError):
    """The message text is not in the queue's encoding."""


class FunctionTimeout(TimeoutError):
    """The invocation ran past host.json's `functionTimeout`."""


def decode(text: str, encoding: str) -> bytes:
    """A message's body from its text, as the extension's QueueClient decodes it."""
    if encoding == "none":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text.translate(_WHITESPACE), validate=True)
    except (binascii.Error, ValueError):
        raise UndecodableMessage("the message is not Base64") from None


def encode(body: bytes, encoding: str) -> str:
    """A message's text from its body, as the extension's QueueClient encodes it (to poison)."""
    if encoding == "none":
        return body.decode("utf-8", errors="replace")
    return base64.b64encode(body).decode("ascii")


def trigger_message(message: QueueMessage, body: bytes) -> func.QueueMessage:
    """The function's argument, built by the worker's converter from what the host sends: the body as
    a string (QueueTrigger binds to `string` for a worker) and the message's metadata."""
    metadata = {
        "Id": meta.Datum(message.id, "string"),
        "DequeueCount": meta.Datum(int(message.dequeue_count or 1), "int"),
        "PopReceipt": meta.Datum(message.pop_receipt, "string"),
    }
    for name, moment in (
        ("InsertionTime", message.inserted_on),
        ("ExpirationTime", message.expires_on),
        ("NextVisibleTime", message.next_visible_on),
    ):
        if isinstance(moment, datetime):
            metadata[name] = meta.Datum(moment.isoformat(), "string")
    trigger = QueueMessageInConverter.decode(
        meta.Datum(body.decode("utf-8", errors="replace"), "string"), trigger_metadata=metadata
    )
    assert isinstance(trigger, func.QueueMessage)
    return trigger


class _Lease:
    """A received message's visibility, renewed at half-time while the function runs; holds the
    newest pop receipt, which the final delete or release needs."""

    def __init__(self, queue: QueueClient, message: QueueMessage, seconds: int) -> None:
        self._queue = queue
        self.message_id = str(message.id)
        self.pop_receipt = str(message.pop_receipt)
        self._seconds = seconds
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._renew, name="queue-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._done.wait(self._seconds / 2):
            with self._lock:
                if self._done.is_set():
                    return
                try:
                    renewed = self._queue.update_message(
                        self.message_id, pop_receipt=self.pop_receipt, visibility_timeout=self._seconds
                    )
                    self.pop_receipt = str(renewed.pop_receipt)
                except Exception:
                    log.warning("renewing a queue message's visibility failed", exc_info=True)

    def end(self) -> str:
        """Stop renewing; the pop receipt to use from now on."""
        with self._lock:
            self._done.set()
            return self.pop_receipt


@dataclass
class QueueRunner:
    """Feeds a queue's messages to a queue-trigger function, as the Functions host does."""

    queue: QueueClient
    poison: QueueClient
    handler: Callable[[func.QueueMessage], None]
    max_dequeue_count: int = 5  # host.json maxDequeueCount (QueuesOptions default 5)
    retry_delay: float = 0.0  # host.json visibilityTimeout (QueuesOptions default 0)
    batch_size: int = 16  # host.json batchSize (QueuesOptions default 16, at most 32)
    new_batch_threshold: int | None = None  # host.json newBatchThreshold; None: batch_size // 2
    encoding: str = "base64"  # host.json messageEncoding (QueuesOptions default Base64)
    function_timeout: float | None = None  # host.json functionTimeout; None: no limit
    lease_seconds: int = LEASE_SECONDS
    failures: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"messageEncoding must be one of {', '.join(ENCODINGS)}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batchSize must be 1 to {MAX_BATCH_SIZE}")
        self._running: set[Future[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def threshold(self) -> int:
        """newBatchThreshold; its default is half the batch size (per processor; one here)."""
        return self.batch_size // 2 if self.new_batch_threshold is None else self.new_batch_threshold

    def run_once(self) -> int:
        """Receive one batch, run its messages at once, and wait for them; return how many messages
        were received. Its threads end with the batch (tests and benchmarks call it directly)."""
        messages = self._receive()
        if messages:
            with ThreadPoolExecutor(len(messages), thread_name_prefix="queue-message") as batch:
                wait([batch.submit(self._process, message) for message in messages])
        return len(messages)

    def drain(self, rounds: int = 100) -> int:
        """Run until the queue has nothing visible; return how many deliveries were made."""
        total = 0
        for _ in range(rounds):
            handled = self.run_once()
            if handled == 0:
                break
            total += handled
        return total

    def poll(self) -> int:
        """Fetch a batch if no more than newBatchThreshold messages are still running, without
        waiting for it; return how many messages were received."""
        with self._lock:
            self._running = {f for f in self._running if not f.done()}
            if len(self._running) > self.threshold:
                return 0
        return len(self._fetch())

    @property
    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for f in self._running if not f.done())

    def close(self) -> None:
        """Wait for the running messages, then stop the workers."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _receive(self) -> list[QueueMessage]:
        return list(
            self.queue.receive_messages(
                messages_per_page=self.batch_size,
                max_messages=self.batch_size,
                visibility_timeout=self.lease_seconds,
            )
        )

    def _fetch(self) -> list[Future[None]]:
        messages = self._receive()
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.batch_size + self.threshold, thread_name_prefix="queue-message"
                )
            futures = [self._executor.submit(self._process, message) for message in messages]
            self._running.update(futures)
        return futures

    def _process(self, message: QueueMessage) -> None:
        text = message.content if isinstance(message.content, str) else bytes(message.content).decode()
        try:
            body = decode(text, self.encoding)
        except UndecodableMessage:
            self._to_poison(message, str(message.pop_receipt), text, reason="the message does not decode")
            return
        if int(message.dequeue_count or 1) > self.max_dequeue_count:
            self._to_poison(
                message, str(message.pop_receipt), encode(body, self.encoding), reason="dequeued too often"
            )
            return
        lease = _Lease(self.queue, message, self.lease_seconds)
        try:
            error = self._invoke(trigger_message(message, body))
        finally:
            pop_receipt = lease.end()
        if error is None:
            self.queue.delete_message(message.id, pop_receipt)
            return
        self.failures.append(error)
        if int(message.dequeue_count or 1) >= self.max_dequeue_count:
            self._to_poison(
                message, pop_receipt, encode(body, self.encoding), reason="maxDequeueCount reached"
            )
            return
        log.warning("queue message failed; retried later", extra={"dequeue_count": message.dequeue_count})
        self.queue.update_message(
            message.id, pop_receipt=pop_receipt, visibility_timeout=int(self.retry_delay)
        )

    def _invoke(self, trigger: func.QueueMessage) -> BaseException | None:
        """Call the function; its exception, a FunctionTimeout, or None."""
        if self.function_timeout is None:
            try:
                self.handler(trigger)
            except Exception as error:  # noqa: BLE001 - any failure is the trigger's to retry or poison
                return error
            return None
        outcome: list[BaseException | None] = []

        def call() -> None:
            try:
                self.handler(trigger)
                outcome.append(None)
            except Exception as error:  # noqa: BLE001 - any failure is the trigger's to retry or poison
                outcome.append(error)

        worker = threading.Thread(target=call, name="queue-invocation", daemon=True)
        worker.start()
        worker.join(self.function_timeout)
        if worker.is_alive():
            return FunctionTimeout(f"the function ran longer than {self.function_timeout:g} s")
        return outcome[0] if outcome else None

    def _to_poison(self, message: QueueMessage, pop_receipt: str, text: str, *, reason: str) -> None:
        try:
            self.poison.create_queue()
        except ResourceExistsError:
            pass
        self.poison.send_message(text)
        self.queue.delete_message(message.id, pop_receipt)
        log.error(
            "queue message moved to the poison queue",
            extra={"dequeue_count": message.dequeue_count, "reason": reason},
        )
