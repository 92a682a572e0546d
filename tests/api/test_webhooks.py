"""Webhooks: only https to hosts on public addresses (no request forgery), secret write-only; and their
delivery by the queue function: no redirects, the checked address, TLS to the name, a bounded time."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from shared.api import create_api
from shared.api.config import ApiSettings
from shared.model import AdlsDestination, Export, Secret
from shared.notify import NotDelivered, Webhooks
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored
from tests.receivers import Authority, Received, Receiver

pytestmark = pytest.mark.integration

PUBLIC_HOOK = "https://hooks.customer.example/signals"  # resolves (in the tests) to a public address

REFUSED = [
    "http://hooks.customer.example/signals",
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://10.0.0.8/hook",
    "https://internal.customer.example/hook",  # a public name for a private address
    "https://169.254.169.254/metadata/instance",
    "https://[::1]/hook",
    "https://192.168.1.10/hook",
    "https://user:pw@hooks.customer.example/hook",
    "https://does-not-resolve.example/hook",
]


@pytest.mark.parametrize("webhook", REFUSED)
def test_webhooks_to_private_or_plain_http_addresses_are_refused(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime, webhook: str
) -> None:
    """A webhook that is not https to a public address answers 400 WebhookNotAllowed on create and on patch."""
    body = storage.adls(notify={"webhook": webhook, "secret": "s" * 32})
    created = client.put(export_url(project, "new"), json=body, headers=writer)
    assert created.status_code == 400, created.text
    assert created.json()["error"]["code"] == "WebhookNotAllowed"
    assert created.json()["error"]["target"] == "notify.webhook"
    url = export_url(project, "existing")
    client.put(url, json=storage.adls(), headers=writer)
    before = stored(service, project)
    patched = client.patch(url, json={"notify": {"webhook": webhook}}, headers=writer)
    assert patched.status_code == 400 and patched.json()["error"]["code"] == "WebhookNotAllowed"
    assert stored(service, project) == before


def test_a_public_https_webhook_is_kept_and_its_secret_never_shown(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """A public https webhook is stored with its secret; responses only say that a secret is set, and a patch keeps it."""
    url = export_url(project, "hooked")
    secret = "webhook-secret-0123456789abcdef"
    created = client.put(
        url, json=storage.adls(notify={"webhook": PUBLIC_HOOK, "secret": secret}), headers=writer
    )
    assert created.status_code == 201, created.text
    assert created.json()["notify"] == {"webhook": PUBLIC_HOOK, "hasSecret": True}
    patched = client.patch(url, json={"signals": ["a"]}, headers=writer)
    assert patched.json()["notify"] == {"webhook": PUBLIC_HOOK, "hasSecret": True}
    export, _ = service.exports.get(project, "hooked")
    assert export.webhook == PUBLIC_HOOK and export.webhook_secret is not None
    assert export.webhook_secret.value == secret
    removed = client.patch(url, json={"notify": {"secret": None}}, headers=writer)
    assert removed.json()["notify"] == {"webhook": PUBLIC_HOOK, "hasSecret": False}
    assert client.patch(url, json={"notify": None}, headers=writer).json().get("notify") is None


def test_private_webhooks_are_allowed_only_by_setting(
    service: Runtime, api_settings: ApiSettings, storage: Storage, project: str, writer: dict[str, str]
) -> None:
    """With ALLOW_PRIVATE_WEBHOOKS on (development), a loopback http webhook is accepted."""
    developing = Runtime(dataclasses.replace(service.settings, allow_private_webhooks=True))
    client = TestClient(create_api(lambda: developing.api, settings=api_settings))
    body = storage.adls(notify={"webhook": "http://127.0.0.1:7072/hook"})
    assert client.put(export_url(project, "dev"), json=body, headers=writer).status_code == 201


# -- delivery: the queue function's work, against receivers on loopback ------------------------------

SECRET = "webhook-secret-0123456789abcdef"
EVENT = {"type": "export.state-changed", "from": "active", "to": "postponed", "cause": "throttled"}


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Receivers a test starts; closed after it."""
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.close()


def _hooked(service: Runtime, project: str, webhook: str) -> str:
    """Store an export of the project with this webhook; the queued message that notifies it."""
    export_id = f"hook-{uuid.uuid4().hex[:8]}"
    destination = AdlsDestination("https://acct.dfs.core.windows.net", "fs", "", Secret("a2V5LWtleS1rZXk="))
    service.exports.put(
        Export(project, export_id, destination, webhook=webhook, webhook_secret=Secret(SECRET))
    )
    return orjson.dumps({"projectId": project, "exportId": export_id, "event": EVENT}).decode()


def _signed(received: Received) -> bool:
    """What a receiver checks: the signature over `<timestamp>.<body>` under the shared secret."""
    timestamp = received.headers["X-Signals-Export-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256)
    return received.headers["X-Signals-Export-Signature"] == "sha256=" + expected.hexdigest()


def test_a_receiver_that_redirects_is_not_followed(
    service: Runtime, project: str, receivers: list[Receiver]
) -> None:
    """A 307 to another (loopback) address is a failed delivery, for the queue to retry; nothing goes where it points."""

    internal = Receiver()

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(307)
        handler.send_header("Location", internal.url("/admin/delete-everything"))
        handler.end_headers()

    hook = Receiver(answer=redirect)
    receivers += [internal, hook]
    message = _hooked(service, project, hook.url())
    with pytest.raises(NotDelivered, match="HTTP 307"):
        Webhooks(service.exports, allow_private=True).deliver(message)
    assert len(hook.received) == 1 and _signed(hook.received[0])
    assert internal.received == []


def test_a_name_that_resolves_elsewhere_on_a_second_lookup_is_reached_at_the_checked_address(
    service: Runtime, project: str, receivers: list[Receiver]
) -> None:
    """DNS rebinding on loopback: the name is looked up once, and the POST goes to the address checked, with the name as Host."""
    checked = Receiver(host="127.0.0.1")
    elsewhere = Receiver(host="127.0.0.2", port=checked.port)
    receivers += [checked, elsewhere]
    answers = iter([["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]])
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    message = _hooked(service, project, checked.url(host="hooks.rebinding.example"))
    delivery = Webhooks(service.exports, allow_private=True, resolve=resolve).deliver(message)
    assert delivery.delivered and lookups == ["hooks.rebinding.example"]
    (call,) = checked.received
    assert call.headers["Host"] == f"hooks.rebinding.example:{checked.port}" and _signed(call)
    assert elsewhere.received == []


def test_https_goes_to_the_checked_address_with_the_names_sni_and_certificate(
    service: Runtime, project: str, receivers: list[Receiver], tmp_path: Path
) -> None:
    """Over TLS the connection to the checked address sends the name (SNI) and checks the certificate against it."""
    authority = Authority.create()
    name = "hooks.customer.example"
    genuine = Receiver(tls=authority.server_context(name, tmp_path))
    impostor = Receiver(tls=authority.server_context("other.example", tmp_path))
    receivers += [genuine, impostor]
    webhooks = Webhooks(
        service.exports,
        allow_private=True,
        resolve=lambda host, port: ["127.0.0.1"],
        verify=authority.client_context(),
    )
    delivery = webhooks.deliver(_hooked(service, project, genuine.url(host=name)))
    assert delivery.delivered
    (call,) = genuine.received
    assert genuine.server_names == [name] and call.headers["Host"] == f"{name}:{genuine.port}"
    assert _signed(call) and orjson.loads(call.body) == EVENT
    with pytest.raises(NotDelivered):
        webhooks.deliver(_hooked(service, project, impostor.url(host=name)))
    assert impostor.received == []


def test_a_receiver_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline(
    service: Runtime, project: str, receivers: list[Receiver]
) -> None:
    """Each byte within the read timeout, never done: the delivery still ends (NotDelivered), cutting the connection."""
    cut = threading.Event()

    def dribble(handler: BaseHTTPRequestHandler) -> None:
        try:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(300):  # a minute at most, whatever happens
                handler.wfile.write(b"X")
                time.sleep(0.2)
        except OSError:
            cut.set()

    hook = Receiver(answer=dribble)
    receivers.append(hook)
    webhooks = Webhooks(service.exports, allow_private=True, deadline=1.0, timeout=5.0)
    with pytest.raises(NotDelivered):
        webhooks.deliver(_hooked(service, project, hook.url()))
    assert cut.wait(30), "the receiver's connection was cut while it was still answering"
