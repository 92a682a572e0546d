"""Export health: real failures drive the documented state changes, and every signal is accounted for."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.filedatalake import DataLakeServiceClient

from devstack.adls_emulator import AdlsEmulator
from devstack.azurite import ACCOUNT, KEY, Azurite
from devstack.queue_runner import QueueRunner
from shared import messages
from shared.model import Export, ExportStatus, Secret
from shared.requests import RequestCounter
from shared.runtime import Runtime, use_runtime
from shared.settings import BACKLOG_CONTAINER
from tests.conftest import BLOB_CUSTOMER, BLOB_CUSTOMER_KEY, LAKE_CUSTOMER, LAKE_CUSTOMER_KEY
from tests.integration.conftest import (
    REGENERATED_KEY,
    Customer,
    Traffic,
    all_lines,
    regenerated_key,
    run_health_check,
    server_busy,
)
from tests.receivers import Receiver
from tests.support import registered, registered_functions

pytestmark = pytest.mark.integration

DAY = 86_400.0


def backlog_lines(azurite: Azurite, export: Export) -> Counter[bytes]:
    """The signals kept in the service's backlog for an export, read with the SDK."""
    container = BlobServiceClient.from_connection_string(azurite.connection_string()).get_container_client(
        BACKLOG_CONTAINER
    )
    lines: Counter[bytes] = Counter()
    for blob in container.list_blobs(name_starts_with=f"{export.project_id}/{export.export_id}/"):
        for row in container.download_blob(blob.name).readall().splitlines():
            lines[row.split(b"\t", 1)[1]] += 1
    return lines


def status(service: Runtime, export: Export) -> ExportStatus:
    return service.exports.get(export.project_id, export.export_id)[0].status


def after_cache(service: Runtime) -> None:
    """What 30 seconds do: every instance's export cache is refreshed."""
    service.registry.invalidate()


def test_the_timer_is_bound_to_the_schedule_setting() -> None:
    """check_health runs on HEALTH_SCHEDULE; replay_backlog and notify_webhook are bound to their queues."""
    functions = registered_functions()
    (timer,) = json.loads(functions["check_health"].get_function_json())["bindings"]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%HEALTH_SCHEDULE%"
    for name, queue_name in (("replay_backlog", "export-replay"), ("notify_webhook", "export-notify")):
        (queue,) = json.loads(functions[name].get_function_json())["bindings"]
        assert queue["type"] == "queueTrigger" and queue["queueName"] == queue_name
        assert queue["connection"] == "AzureWebJobsStorage"


def test_queue_messages_are_base64_as_host_json_says() -> None:
    """The service writes its queue messages Base64 (shared.messages), which is what the queue
    extension 5.x decodes by default and what host.json states (Azure/azure-sdk-for-net,
    sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/QueueTriggerAttribute.cs)."""
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    assert host["extensions"]["queues"]["messageEncoding"] == "base64"
    assert base64.b64decode(messages.encode({"a": 1}), validate=True) == b'{"a":1}'


def test_a_regenerated_adls_key_postpones_the_export_and_keeps_every_signal(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    azurite: Azurite,
) -> None:
    """Authentication failures postpone at the next check; nothing is lost, everything is counted."""
    fs = f"fs{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, "out"))
    exported = traffic.send(20)
    run_health_check()
    assert status(service, export) is ExportStatus.ACTIVE
    with regenerated_key(lake):
        failed = traffic.send(15)
        run_health_check()
        assert status(service, export) is ExportStatus.POSTPONED
        after_cache(service)
        held = traffic.send(10)
        view = service.health_view.of(export.project_id, export.export_id)
    assert all_lines(customer.lake_files(fs)) == traffic.lines(exported)
    assert backlog_lines(azurite, export) == traffic.lines(failed + held)
    assert view["status"] == "postponed" and view["cause"] == "authentication-failed"
    assert any("key" in hint for hint in view["hints"])
    counters = view["counters"]
    assert counters["exported"] + counters["backlogged"] + counters["dropped"] == len(traffic.sent)
    assert (counters["exported"], counters["backlogged"]) == (20, 25)
    assert view["lastErrorCode"] == "AuthenticationFailed"
    assert view["history"][-1]["to"] == "postponed"
    assert REGENERATED_KEY not in json.dumps(view) and LAKE_CUSTOMER_KEY not in json.dumps(view)


def test_failures_before_a_resume_do_not_postpone_the_export_again(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> None:
    """Writes that failed after the check postponed the export (an instance whose cache still said
    active) are not held against it once the customer fixes the key and resumes: the next check keeps
    it active (it postponed it again, and the customer had to resume twice)."""
    fs = f"fs{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, "out"))
    traffic.send(5)
    run_health_check()
    with regenerated_key(lake):
        traffic.send(5)
        run_health_check()
        assert status(service, export) is ExportStatus.POSTPONED
        late = traffic.send(5)  # this instance has not seen the postponement yet: its writes fail
    service.resumer.resume(export)
    after_cache(service)
    run_health_check()
    view = service.health_view.of(export.project_id, export.export_id)
    assert status(service, export) is ExportStatus.ACTIVE, view["history"][-1]
    assert view["history"][-1]["reason"] == "Resumed by the customer."
    assert late and view["counters"]["failedWrites"] > 0  # the late failures happened, and are counted


def test_a_regenerated_blob_key_postpones_the_export(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    azurite: Azurite,
) -> None:
    """Azurite restarted with another key for the customer's account: authentication-failed."""
    container = f"ai{traffic.project[-8:]}"
    export = create_export(traffic.project, "ai", customer.blob(container))
    traffic.send(5)
    run_health_check()
    azurite.restart(accounts={ACCOUNT: KEY, BLOB_CUSTOMER: REGENERATED_KEY})
    try:
        traffic.send(5)
        run_health_check()
        view = service.health_view.of(export.project_id, export.export_id)
    finally:
        azurite.restart(accounts={ACCOUNT: KEY, BLOB_CUSTOMER: BLOB_CUSTOMER_KEY})
    assert view["status"] == "postponed" and view["cause"] == "authentication-failed"
    assert (view["counters"]["exported"], view["counters"]["backlogged"]) == (5, 5)
    assert backlog_lines(azurite, export) == traffic.lines(traffic.sent[5:])


@pytest.mark.parametrize("kind", ["adls", "blob"])
def test_a_deleted_filesystem_or_container_postpones_with_not_found(
    kind: str,
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    azurite: Azurite,
) -> None:
    """The filesystem or container is deleted: the export is postponed, not silently recreated."""
    name = f"gone{traffic.project[-8:]}"
    destination = customer.adls(name, "") if kind == "adls" else customer.blob(name)
    export = create_export(traffic.project, "gone", destination)
    traffic.send(4)
    run_health_check()
    if kind == "adls":
        DataLakeServiceClient(
            customer.lake_url, credential={"account_name": LAKE_CUSTOMER, "account_key": LAKE_CUSTOMER_KEY}
        ).delete_file_system(name)
    else:
        BlobServiceClient(
            customer.blob_url, credential={"account_name": BLOB_CUSTOMER, "account_key": BLOB_CUSTOMER_KEY}
        ).delete_container(name)
    traffic.send(6)
    run_health_check()
    view = service.health_view.of(export.project_id, export.export_id)
    assert view["status"] == "postponed" and view["cause"] == "not-found"
    assert any("still exists" in hint for hint in view["hints"])
    assert backlog_lines(azurite, export) == traffic.lines(traffic.sent[4:])


def test_throttling_postpones_only_when_it_persists_and_resumes_by_itself(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    azurite: Azurite,
) -> None:
    """503 ServerBusy: retried, backlogged, postponed after 3 checks in a row, probed, resumed."""
    fs = f"busy{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    traffic.send(5)
    run_health_check()
    with server_busy(lake, fs):
        for check in range(3):
            traffic.send(3)
            run_health_check()
            expected = ExportStatus.POSTPONED if check == 2 else ExportStatus.ACTIVE
            assert status(service, export) is expected, f"after check {check + 1}"
        view = service.health_view.of(export.project_id, export.export_id)
        assert view["cause"] == "throttled" and any("Metrics" in hint for hint in view["hints"])
        run_health_check()  # the probe only reads: the account answers reads, so it resumes
    assert status(service, export) is ExportStatus.ACTIVE
    assert service.health_view.of(export.project_id, export.export_id)["history"][-1]["reason"].endswith(
        "resumed by the service."
    )
    assert service.replay_queue.get_queue_properties().approximate_message_count >= 1
    assert backlog_lines(azurite, export) == traffic.lines(traffic.sent[5:])


def test_an_unreachable_endpoint_is_transient_and_postpones_when_it_persists(
    service: Runtime, create_export: Callable[..., Export], traffic: Traffic, azurite: Azurite
) -> None:
    """The storage endpoint stops answering: connection errors, backlog, postponed after 3 checks."""
    own = AdlsEmulator(accounts={LAKE_CUSTOMER: LAKE_CUSTOMER_KEY}).start()
    destination = Customer(own, azurite).adls("down", "")
    export = create_export(traffic.project, "down", destination)
    traffic.send(2)
    run_health_check()
    own.stop()
    for _ in range(3):
        traffic.send(2)
        run_health_check()
    view = service.health_view.of(export.project_id, export.export_id)
    assert view["status"] == "postponed" and view["cause"] == "transient"
    assert view["counters"]["backlogged"] == 6 and view["counters"]["exported"] == 2
    assert backlog_lines(azurite, export) == traffic.lines(traffic.sent[2:])


def test_after_seven_days_postponed_the_export_is_disabled_and_its_backlog_expires(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
    azurite: Azurite,
) -> None:
    """With a controlled clock: disabled after 7 days, backlog removed and counted as lost, then dropped."""
    fs = f"week{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, ""))
    start = service.clock()
    with regenerated_key(lake):
        traffic.send(7)
        run_health_check()
        after_cache(service)
        traffic.send(3)
        service.clock = lambda: start + 6.9 * DAY
        run_health_check()
        assert status(service, export) is ExportStatus.POSTPONED, "kept before 7 days"
        service.clock = lambda: start + 7.1 * DAY
        run_health_check()
        assert status(service, export) is ExportStatus.DISABLED
        after_cache(service)
        traffic.send(4)
        service.clock = lambda: start + 8.5 * DAY
        run_health_check()
    view = service.health_view.of(export.project_id, export.export_id)  # on the clock set above
    counters = view["counters"]
    assert (counters["backlogged"], counters["lost"], counters["dropped"]) == (10, 10, 4)
    assert counters["exported"] + counters["backlogged"] + counters["dropped"] == len(traffic.sent)
    assert backlog_lines(azurite, export) == Counter()
    assert view["backlog"]["files"] == 0


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    """A receiver on loopback that records what it is sent."""
    receiver = Receiver()
    yield receiver
    receiver.close()


def _hooked_export(
    service: Runtime, traffic: Traffic, customer: Customer, url: str
) -> tuple[Runtime, Export]:
    """An export of the traffic's project that names a (loopback) webhook, on a runtime that allows it."""
    local = Runtime(dataclasses.replace(service.settings, allow_private_webhooks=True))
    use_runtime(local)
    fs = f"hook{traffic.project[-8:]}"
    export = Export(
        traffic.project, "lake", customer.adls(fs, ""), webhook=url, webhook_secret=Secret("s3cret")
    )
    local.destinations.prepare(export.destination)
    local.exports.put(export)
    return local, export


def _notify(local: Runtime) -> QueueRunner:
    """The queue function notify_webhook on its queue, as the Functions host runs it."""
    name = local.notify_queue.queue_name
    return QueueRunner(local.notify_queue, local.queue(f"{name}-poison"), registered("notify_webhook"))


def test_a_state_change_is_queued_then_posted_signed_to_the_exports_webhook(
    service: Runtime, customer: Customer, traffic: Traffic, lake: AdlsEmulator, webhook: Receiver
) -> None:
    """The health check queues the change; the queue function posts it with cause, reason and hints, signed."""
    local, export = _hooked_export(service, traffic, customer, webhook.url())
    with regenerated_key(lake):
        traffic.send(3)
        run_health_check()
    history = local.health_view.of(export.project_id, export.export_id)["history"]
    assert history[-1]["notified"] == "queued"
    assert _notify(local).drain() == 1
    (call,) = webhook.received
    event = json.loads(call.body)
    assert (event["exportId"], event["from"], event["to"], event["cause"]) == (
        "lake",
        "active",
        "postponed",
        "authentication-failed",
    )
    assert event["hints"]
    expected = hmac.new(
        b"s3cret", call.headers["X-Signals-Export-Timestamp"].encode() + b"." + call.body, hashlib.sha256
    )
    assert call.headers["X-Signals-Export-Signature"] == "sha256=" + expected.hexdigest()


def test_a_slow_webhook_receiver_does_not_hold_up_the_health_check(
    service: Runtime, customer: Customer, traffic: Traffic, lake: AdlsEmulator
) -> None:
    """A receiver that would hang is not even called by the health check: the queue function delivers later."""
    gate = threading.Event()

    def hang(handler: BaseHTTPRequestHandler) -> None:
        gate.wait(60)
        handler.send_response(204)
        handler.end_headers()

    slow = Receiver(answer=hang)
    try:
        local, export = _hooked_export(service, traffic, customer, slow.url())
        with regenerated_key(lake):
            traffic.send(3)
            run_health_check()
        assert slow.received == [], "the health check called the receiver"
        assert status(local, export) is ExportStatus.POSTPONED
        assert (
            local.health_view.of(export.project_id, export.export_id)["history"][-1]["notified"] == "queued"
        )
        gate.set()
        assert _notify(local).drain() == 1
        assert len(slow.received) == 1
    finally:
        gate.set()
        slow.close()


def test_bookkeeping_costs_fewer_requests_than_the_writes_it_records(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> None:
    """Ledger and health records together cost fewer storage requests than the data writes."""
    counter = RequestCounter(
        {
            f":{lake.port}/": "lake",
            f":{customer.azurite.blob_port}/{BLOB_CUSTOMER}": "customer-blob",
            f":{customer.azurite.table_port}/": "table",
        }
    )
    counted = Runtime(service.settings, request_hook=counter)
    use_runtime(counted)
    fs = f"cost{traffic.project[-8:]}"
    for index in range(3):
        export = Export(traffic.project, f"lake{index}", customer.adls(fs, f"e{index}"))
        counted.destinations.prepare(export.destination)
        counted.exports.put(export)
    counter.reset()
    for _ in range(10):
        traffic.send(50, names=("a", "b", "c"))
    run_health_check()
    data = counter.counts["lake"]
    bookkeeping = counter.counts["table"]
    print(f"data requests {data}, table requests {bookkeeping}, ratio {bookkeeping / data:.2f}")
    assert data >= 30  # 10 batches x 3 exports, plus file creations
    assert bookkeeping < data


def test_after_a_service_key_rotation_the_health_check_reseals_every_customer_key(
    service: Runtime, customer: Customer, create_export: Callable[..., Export], traffic: Traffic
) -> None:
    """KEY_ENCRYPTION_KEY gains a newer key: keys sealed under the old one are resealed, and still open."""
    from shared.secrets import KeyBox, new_service_key

    export = create_export(traffic.project, "lake", customer.adls(f"rot{traffic.project[-8:]}", ""))
    old, new = service.settings.key_encryption_key, new_service_key()
    rotated = Runtime(dataclasses.replace(service.settings, key_encryption_key=f"{new},{old}"))
    use_runtime(rotated)
    try:
        run_health_check()
        entity = rotated.exports_table.get_entity(export.project_id, export.export_id)
        assert rotated.keys.is_current(entity["sealed_key"])
        assert (
            rotated.exports.get(export.project_id, export.export_id)[0].destination.credential
            == export.destination.credential
        )
        only_new = KeyBox.from_setting(new)
        context = f"export:{export.project_id}/{export.export_id}"
        assert only_new.open(entity["sealed_key"], context) == export.destination.credential
        assert rotated.exports.reseal() == 0
    finally:
        # The session's other tests still hold only the old key: seal everything back under it.
        Runtime(dataclasses.replace(service.settings, key_encryption_key=f"{old},{new}")).exports.reseal()
