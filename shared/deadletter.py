"""Dead letters: events that are not signals, kept whole with the reason, in the service's own storage.

One blob per event, named by partition and sequence number and created only if absent, so a batch
delivered twice dead-letters each event once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Protocol

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient

from shared.signals import Rejection


class DeadLetterStore(Protocol):
    """Where the export path puts events that are not signals."""

    def put(self, partition: str, rejections: Iterable[Rejection]) -> int:
        """Keep each rejection once; return how many were given."""


class DeadLetters:
    """Writes rejected events to the dead-letter container."""

    def __init__(self, container: ContainerClient, hub: str) -> None:
        self._container = container
        self._hub = hub

    def put(self, partition: str, rejections: Iterable[Rejection]) -> int:
        """Store each rejection; returns how many. Failures propagate: our own storage is down."""
        count = 0
        for rejection in rejections:
            event = rejection.event
            name = f"{event.enqueued:%Y/%m/%d}/{self._hub}-{partition}/{event.sequence:020d}.json"
            try:
                self._container.upload_blob(
                    name,
                    dead_letter_record(partition, rejection),
                    match_condition=MatchConditions.IfMissing,
                )
            except ResourceExistsError:
                pass  # delivered before: already dead-lettered
            count += 1
        return count


def dead_letter_record(partition: str, rejection: Rejection) -> bytes:
    """The JSON document kept for a rejected event: why, where it came from, and its exact bytes."""
    event = rejection.event
    try:
        text: str | None = event.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return orjson.dumps(
        {
            "reason": rejection.reason.value,
            "detail": rejection.detail,
            "partition": partition,
            "sequenceNumber": event.sequence,
            "enqueuedTime": event.enqueued.isoformat(),
            "projectId": event.project_id,
            "bodyBytes": len(event.body),
            "body": text if text is not None and len(event.body) <= 64 * 1024 else None,
            "bodyBase64": base64.b64encode(event.body).decode(),
        }
    )
