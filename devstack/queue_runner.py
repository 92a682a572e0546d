"""A queue trigger without the Functions host: the same semantics, for the local host and tests.

Messages are received with a visibility timeout; a message whose handler raises becomes visible
again after `retry_delay`; one that has failed `max_dequeue_count` times moves to `<queue>-poison`
(the host's behaviour, host.json `queues`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions import meta
from azure.functions.queue import QueueMessageInConverter
from azure.storage.queue import QueueClient, QueueMessage

log = logging.getLogger("signals_export.devstack.queue")


@dataclass
class QueueRunner:
    """Feeds a queue's messages to a queue-trigger function."""

    queue: QueueClient
    poison: QueueClient
    handler: Callable[[func.QueueMessage], None]
    max_dequeue_count: int = 5
    visibility_timeout: int = 30
    retry_delay: int = 0
    batch_size: int = 16
    failures: list[BaseException] = field(default_factory=list)

    def run_once(self) -> int:
        """Receive one batch and handle it; return how many messages were handled (or failed)."""
        messages = list(
            self.queue.receive_messages(
                messages_per_page=self.batch_size,
                max_messages=self.batch_size,
                visibility_timeout=self.visibility_timeout,
            )
        )
        for message in messages:
            self._handle(message)
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

    def _handle(self, message: QueueMessage) -> None:
        content = message.content
        body = content if isinstance(content, bytes) else str(content).encode()
        # Built by the worker's own converter, as the host would hand it to the function.
        trigger = QueueMessageInConverter.decode(
            meta.Datum(body, "bytes"),
            trigger_metadata={
                "Id": meta.Datum(message.id, "string"),
                "DequeueCount": meta.Datum(message.dequeue_count or 1, "int"),
                "PopReceipt": meta.Datum(message.pop_receipt, "string"),
            },
        )
        try:
            self.handler(trigger)
        except Exception as error:
            self.failures.append(error)
            if (message.dequeue_count or 0) >= self.max_dequeue_count:
                self._to_poison(message, body)
                return
            log.warning("queue message failed; retried later", extra={"dequeue_count": message.dequeue_count})
            self.queue.update_message(
                message, pop_receipt=message.pop_receipt, visibility_timeout=self.retry_delay
            )
            return
        self.queue.delete_message(message)

    def _to_poison(self, message: QueueMessage, body: bytes) -> None:
        try:
            self.poison.create_queue()
        except ResourceExistsError:
            pass
        self.poison.send_message(body.decode())
        self.queue.delete_message(message)
        log.error("queue message moved to the poison queue", extra={"dequeue_count": message.dequeue_count})
