"""Webhooks: only https to hosts on public addresses (no request forgery), secret write-only."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from shared.api import create_api
from shared.api.config import ApiSettings
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored

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
    export, _ = service.store.get(project, "hooked")
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
    client = TestClient(create_api(lambda: developing, settings=api_settings))
    body = storage.adls(notify={"webhook": "http://127.0.0.1:7072/hook"})
    assert client.put(export_url(project, "dev"), json=body, headers=writer).status_code == 201
