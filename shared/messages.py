"""Queue messages as the Functions host's queue trigger decodes them.

The Storage Queues extension (5.x, in extension bundle 4.x) decodes a message body as Base64 unless
host.json says otherwise (`extensions.queues.messageEncoding`, default `base64`; Azure/azure-sdk-for-net,
sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues, QueueTriggerAttribute and QueuesOptions).
host.json states `base64`, and every queue the service writes for a queue function goes through here:
the work items of `export-replay`, the notifications of `export-notify` (docs/conformance.md).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson


def encode(document: Mapping[str, Any]) -> str:
    """A message body: Base64 of the document's UTF-8 JSON."""
    return base64.b64encode(orjson.dumps(document)).decode("ascii")
