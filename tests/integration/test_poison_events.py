"""Bodies that used to make the Event Hub function raise (and so retry the batch without end), between
other projects' signals, through the registered function: the partition moves on, nothing is lost."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from shared.model import Export
from shared.runtime import Runtime
from shared.settings import DEADLETTER_CONTAINER
from tests.integration.conftest import Customer
from tests.support import Producer, registered, signal, trigger_batch

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)

# Valid JSON (RFC 8259) that simdjson refuses: exported as sent (a byte order mark left out).
VALID = [
    b'{"name":"odd","n":-9223372036854775809}',  # simdjson raised RuntimeError: the batch retried for ever
    b'{"name":"odd","n":18446744073709551616}',
    b'{"name":"odd","n":1e400}',
    b'{"name":"odd","text":"\\ud83d truncated by a client"}',
    b'{"name":"odd","deep":' + b"[" * 1022 + b"0" + b"]" * 1022 + b"}",
    b'\xef\xbb\xbf{"name":"odd","bom":true}',
]
# What cannot be a signal, and the reason its dead letter gives.
POISON = [
    (b'{"name":"odd","deep":' + b"[" * 1100 + b"]" * 1100 + b"}", "too-deep"),  # simdjson raised too
    (b'{"name":"\\udc00","n":1}', "invalid-name"),
    (b'{"name":"odd","n":-9223372036854775809', "not-json"),
    (b'{"name":"odd","n":NaN}', "not-json"),
]


def test_poison_bodies_between_other_projects_signals_leave_the_batch_whole(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    project: str,
    azurite: Any,
    hub: str,
) -> None:
    """One batch: other projects' signals, odd but valid JSON, and poison. The function returns; every
    signal is in its file once, verbatim; each poison body is dead-lettered with its reason."""
    alpha, beta = project, project + "-b"
    fs_a, fs_b = f"fs{alpha[-8:]}a", f"fs{alpha[-8:]}b"
    create_export(alpha, "lake", customer.adls(fs_a, ""))
    create_export(beta, "lake", customer.adls(fs_b, ""))
    producer = Producer(START)
    sent = []
    for index in range(12):
        sent.append(producer.send(*signal(alpha, "click", index)))
        if index < len(VALID):
            sent.append(producer.send(VALID[index], {"projectId": beta}))
        if index < len(POISON):
            sent.append(producer.send(POISON[index][0], {"projectId": beta}))

    registered("export_signals")(trigger_batch("2", sent))  # returns: the checkpoint moves on

    alpha_lines = [line for lines in customer.lake_files(fs_a).values() for line in lines]
    assert sorted(alpha_lines) == sorted(e.body for e in sent if e.properties["projectId"] == alpha)
    beta_lines = [line for lines in customer.lake_files(fs_b).values() for line in lines]
    assert sorted(beta_lines) == sorted(body.removeprefix(b"\xef\xbb\xbf") for body in VALID)
    dead = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        DEADLETTER_CONTAINER
    )
    records = [
        json.loads(dead.download_blob(b.name).readall()) for b in dead.list_blobs() if f"/{hub}-2/" in b.name
    ]
    by_body = {base64.b64decode(record["bodyBase64"]): record for record in records}
    assert len(records) == len(POISON)
    for body, reason in POISON:
        assert by_body[body]["reason"] == reason
    assert len(alpha_lines) + len(beta_lines) + len(records) == len(sent)
