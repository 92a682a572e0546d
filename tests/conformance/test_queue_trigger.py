"""Queue trigger rows: the replay queue as the Storage Queues extension (5.x) runs it.

The local queue runner follows the extension's rules (tests.conformance.sources cites them); these
tests prove that the service's replay messages, and the poison messages it reads back, agree with
those rules, and that the runner keeps them."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import orjson
import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.queue import QueueClient

from devstack.azurite import Azurite
from devstack.functions import registered_functions
from devstack.host import host_json
from devstack.queue_runner import LEASE_SECONDS, MAX_BATCH_SIZE, FunctionTimeout, QueueRunner, decode, encode
from devstack.triggers import PollingBackoff
from shared.model import Export
from shared.replay import WorkItem
from shared.runtime import Runtime
from tests.conformance import sources
from tests.integration.conftest import Customer, Traffic, all_lines

pytestmark = pytest.mark.integration


@pytest.fixture
def queues(azurite: Azurite) -> Iterator[tuple[QueueClient, QueueClient]]:
    """A queue and its poison queue of the test's own, without any encoding policy (raw text)."""
    name = f"q{uuid.uuid4().hex[:12]}"
    queue = QueueClient.from_connection_string(azurite.connection_string(), name)
    poison = QueueClient.from_connection_string(azurite.connection_string(), name + sources.POISON_SUFFIX)
    queue.create_queue()
    yield queue, poison
    queue.delete_queue()


def texts(queue: QueueClient) -> list[str]:
    try:
        return [str(m.content) for m in queue.peek_messages(max_messages=32)]
    except HttpResponseError:
        return []


def recorder() -> tuple[list[func.QueueMessage], Callable[[func.QueueMessage], None]]:
    calls: list[func.QueueMessage] = []
    return calls, calls.append


def test_the_runner_takes_the_extension_defaults_and_host_json_states_the_encoding() -> None:
    """Devstack's defaults are QueuesOptions' and QueueListener's; host.json names the encoding the
    service writes, which is also the extension's default."""
    runner = QueueRunner(None, None, lambda _: None)  # type: ignore[arg-type]
    assert runner.encoding == sources.QUEUE_DEFAULT_ENCODING
    assert runner.max_dequeue_count == sources.QUEUE_DEFAULT_MAX_DEQUEUE_COUNT
    assert runner.batch_size == sources.QUEUE_DEFAULT_BATCH_SIZE
    assert runner.threshold == sources.QUEUE_DEFAULT_BATCH_SIZE // 2
    assert runner.retry_delay == sources.QUEUE_DEFAULT_VISIBILITY_TIMEOUT
    assert (
        LEASE_SECONDS == sources.QUEUE_RECEIVE_VISIBILITY and MAX_BATCH_SIZE == sources.QUEUE_MAX_BATCH_SIZE
    )
    configured = host_json()["extensions"]["queues"]
    assert configured["messageEncoding"] == sources.QUEUE_DEFAULT_ENCODING
    assert configured["batchSize"] <= sources.QUEUE_MAX_BATCH_SIZE


def test_a_work_item_decoded_as_the_extension_decodes_it_is_the_json_replay_backlog_reads() -> None:
    """WorkItem.to_message is Base64 of the JSON: decoded as host.json says, the function's body parses
    back; read without decoding (messageEncoding none), the same text would not parse."""
    item = WorkItem("proj", "lake", "proj/lake/abcdef012345/signals/2026/03/07/09/lake_0.jsonl")
    text = item.to_message()
    body = decode(text, host_json()["extensions"]["queues"]["messageEncoding"])
    assert WorkItem.from_message(body.decode()) == item
    with pytest.raises(orjson.JSONDecodeError):
        WorkItem.from_message(decode(text, "none").decode())


def test_the_function_gets_the_body_as_a_string_with_the_message_metadata(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """The host binds a queue trigger without dataType to `string` (JobHostMetadataProvider's default):
    the worker's converter gives the decoded body's UTF-8 bytes, the id and the dequeue count."""
    trigger = registered_functions()["replay_backlog"].trigger
    assert trigger["type"] == "queueTrigger" and "dataType" not in trigger
    queue, poison = queues
    queue.send_message(encode("héllo ✓".encode(), "base64"))
    calls, handler = recorder()
    QueueRunner(queue, poison, handler).drain()
    [message] = calls
    assert message.get_body() == "héllo ✓".encode() and message.dequeue_count == 1 and message.id
    assert texts(queue) == [] and texts(poison) == []


def test_a_message_that_does_not_decode_goes_to_poison_unchanged_without_a_call(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """Plain JSON on a Base64 queue (what replay used to send) never reaches the function: the
    extension moves it to the poison queue as it was (MessageDecodingFailed)."""
    queue, poison = queues
    plain = '{"projectId":"p","exportId":"e","blob":"p/e/x"}'
    queue.send_message(plain)
    calls, handler = recorder()
    QueueRunner(queue, poison, handler).drain()
    assert calls == [] and texts(poison) == [plain] and texts(queue) == []


def test_a_failed_message_is_hidden_for_visibility_timeout_then_retried_with_its_dequeue_count(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """A failure releases the message with host.json's visibilityTimeout: hidden meanwhile, then
    delivered again with a dequeue count one higher."""
    queue, poison = queues
    queue.send_message(encode(b"work", "base64"))
    seen: list[int] = []

    def fail(message: func.QueueMessage) -> None:
        seen.append(int(message.dequeue_count or 0))
        raise RuntimeError("destination down")

    assert QueueRunner(queue, poison, fail, retry_delay=3).run_once() == 1
    assert QueueRunner(queue, poison, fail).run_once() == 0  # hidden for visibilityTimeout
    assert queue.get_queue_properties().approximate_message_count == 1
    time.sleep(3.5)
    assert QueueRunner(queue, poison, fail).run_once() == 1
    assert seen == [1, 2]


def test_after_max_dequeue_count_failures_the_message_moves_to_poison_encoded_like_the_queue(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """Five failed attempts (maxDequeueCount), then the message is copied to `<queue>-poison`, Base64
    like every message the host writes, and deleted."""
    queue, poison = queues
    queue.send_message(encode(b"doomed", "base64"))
    runner = QueueRunner(queue, poison, lambda _: (_ for _ in ()).throw(RuntimeError("no")))
    assert runner.drain() == sources.QUEUE_DEFAULT_MAX_DEQUEUE_COUNT
    assert [decode(text, "base64") for text in texts(poison)] == [b"doomed"] and texts(queue) == []


def test_a_message_dequeued_too_often_already_goes_to_poison_before_any_call(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """An instance died holding the message on its last attempt: the next receive sees a dequeue count
    over maxDequeueCount and moves it to poison without calling the function."""
    queue, poison = queues
    queue.send_message(encode(b"crashed", "base64"))
    for _ in range(3):
        [message] = list(queue.receive_messages(max_messages=1, visibility_timeout=30))
        queue.update_message(message.id, message.pop_receipt, visibility_timeout=0)
    calls, handler = recorder()
    QueueRunner(queue, poison, handler, max_dequeue_count=3).drain()
    assert calls == [] and [decode(t, "base64") for t in texts(poison)] == [b"crashed"]


def test_an_invocation_past_the_function_timeout_is_a_failed_attempt(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """A function still running at functionTimeout fails that attempt (the host restarts the worker):
    the message is released for a retry, and after maxDequeueCount such attempts it is poison."""
    queue, poison = queues
    queue.send_message(encode(b"slow", "base64"))
    release = threading.Event()
    runner = QueueRunner(queue, poison, lambda _: release.wait(30), function_timeout=0.2, max_dequeue_count=2)
    try:
        runner.drain()
    finally:
        release.set()
    assert [type(error) for error in runner.failures] == [FunctionTimeout, FunctionTimeout]
    assert [decode(t, "base64") for t in texts(poison)] == [b"slow"]


def test_a_running_message_stays_invisible_while_its_lease_is_renewed(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """The receive hides a message for a while and renews that at half-time while the function runs,
    so that no other instance gets it however long the function takes."""
    queue, poison = queues
    queue.send_message(encode(b"long", "base64"))
    started, release = threading.Event(), threading.Event()

    def long_running(_: func.QueueMessage) -> None:
        started.set()
        release.wait(30)

    runner = QueueRunner(queue, poison, long_running, lease_seconds=4)
    assert runner.poll() == 1 and started.wait(30)
    try:
        time.sleep(6)  # past the first lease: only a renewal keeps the message hidden
        assert list(queue.receive_messages(max_messages=1, visibility_timeout=1)) == []
    finally:
        release.set()
        runner.close()
    assert texts(queue) == [] and texts(poison) == []


def test_a_new_batch_is_fetched_only_when_few_enough_messages_still_run(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """batchSize messages per receive; no new receive while more than newBatchThreshold run."""
    queue, poison = queues
    for n in range(10):
        queue.send_message(encode(b"%d" % n, "base64"))
    release = threading.Event()
    calls: list[func.QueueMessage] = []

    def blocked(message: func.QueueMessage) -> None:
        calls.append(message)
        release.wait(30)

    runner = QueueRunner(queue, poison, blocked, batch_size=4, new_batch_threshold=2)
    assert runner.poll() == 4
    assert runner.poll() == 0 and runner.in_flight == 4
    release.set()
    runner.close()
    assert runner.drain() == 6 and len(calls) == 10


def test_an_empty_queue_is_polled_with_the_listeners_randomized_backoff() -> None:
    """From 100 ms, each empty poll waits 100 ms plus 0.8-1.2 times 100 ms doubled, up to
    maxPollingInterval; a message brings it back to 100 ms (RandomizedExponentialBackoffStrategy)."""
    backoff = PollingBackoff(2.0, rng=random.Random(7))
    rng = random.Random(7)
    minimum = sources.QUEUE_POLLING_MINIMUM
    expected = [minimum] + [minimum + rng.uniform(0.8, 1.2) * 2 ** (n - 1) * minimum for n in range(1, 4)]
    assert [backoff.next_delay(found=False) for _ in range(4)] == expected
    assert [backoff.next_delay(found=False) for _ in range(10)][-1] == 2.0
    assert backoff.next_delay(found=True) == minimum


def test_the_largest_work_item_fits_a_queue_message_and_azurite_refuses_one_byte_over(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    """A message is at most 64 KiB: a work item naming a 1,024-character backlog blob of 4-byte
    characters is a fraction of it, Base64 included. Azurite enforces the limit."""
    item = WorkItem("p" * 63, "e" * 63, "𝄞" * 1024)
    assert len(item.to_message().encode()) < sources.QUEUE_MESSAGE_MAX_BYTES // 8
    queue, _ = queues
    queue.send_message("a" * sources.QUEUE_MESSAGE_MAX_BYTES)
    with pytest.raises(HttpResponseError):
        queue.send_message("a" * (sources.QUEUE_MESSAGE_MAX_BYTES + 1))


# -- the resume-and-replay path with the host's default decoding ---------------------------------------


def test_resume_and_replay_work_with_the_hosts_default_queue_decoding(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any]
) -> None:
    """The service enqueues the backlog; the queue is decoded as the extension does by default
    (Base64), and replay_backlog, as registered, writes every signal once."""
    calls: list[WorkItem] = []
    function = registered_functions()["replay_backlog"].handler

    def replay_backlog(message: func.QueueMessage) -> None:
        calls.append(WorkItem.from_message(message.get_body().decode()))
        function(message)

    export: Export = postponed["export"]
    assert service.resumer.resume(export).work_items >= 1
    QueueRunner(service.replay_queue, service.poison_queue, replay_backlog).drain()
    # The queue is shared with the other tests' exports (the health check queues their backlogs too).
    assert export.key in {(c.project_id, c.export_id) for c in calls}
    assert all_lines(customer.lake_files(postponed["fs"])) == traffic.lines()
    view = service.health_view.of(*export.key)
    progress = {key: view["replay"][key] for key in ("itemsLeft", "bytesLeft", "poisonedItems")}
    assert progress == {"itemsLeft": 0, "bytesLeft": 0, "poisonedItems": 0}


def test_poison_messages_of_either_encoding_are_counted_and_cleared_by_the_next_resume(
    service: Runtime, postponed: dict[str, Any]
) -> None:
    """The health view counts the export's poison messages, whether the host wrote them Base64 (after
    maxDequeueCount failures) or moved them unchanged (undecodable); the next resume clears both."""
    item = WorkItem(postponed["export"].project_id, postponed["export"].export_id, "gone")
    with contextlib.suppress(ResourceExistsError):
        service.poison_queue.create_queue()
    service.poison_queue.send_message(item.to_message())
    service.poison_queue.send_message(
        json.dumps({"projectId": item.project_id, "exportId": item.export_id, "blob": "x"})
    )
    assert service.health_view.of(*postponed["export"].key)["replay"]["poisonedItems"] == 2
    service.replays.enqueue(postponed["export"])
    assert service.health_view.of(*postponed["export"].key)["replay"]["poisonedItems"] == 0
