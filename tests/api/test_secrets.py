"""Customers' keys and webhook secrets are write-only: nowhere in responses, logs or stored values."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from devstack.azurite import Azurite
from shared.model import ExportStatus
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, raw_entities
from tests.conftest import BLOB_CUSTOMER_KEY, LAKE_CUSTOMER_KEY

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec-known-0123456789-abcdefghij"
SECRETS = (LAKE_CUSTOMER_KEY, BLOB_CUSTOMER_KEY, WEBHOOK_SECRET)


def record_text(record: logging.LogRecord) -> str:
    """Everything a log record holds, as text: what a handler could write."""
    return " ".join(
        [
            record.getMessage(),
            record.exc_text or "",
            str(record.args),
            *(repr(v) for v in vars(record).values()),
        ]
    )


def test_keys_and_webhook_secrets_appear_in_no_response_log_or_stored_value(
    client: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    service: Runtime,
    azurite: Azurite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The whole life of exports with known secrets, failures included: no response, log record or table value holds one."""
    caplog.set_level(logging.DEBUG)
    url = export_url(project, "secretive")
    notify = {"webhook": "https://hooks.customer.example/in", "secret": WEBHOOK_SECRET}
    merge = {**writer, "Content-Type": "application/merge-patch+json"}
    responses: list[httpx.Response] = []

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = client.request(method, path, **kwargs)
        assert response.status_code < 500, response.text
        responses.append(response)
        return response

    assert call("PUT", url, json=storage.adls(notify=notify), headers=writer).status_code == 201
    call("GET", url, headers=writer)
    call("GET", f"/api/projects/{project}/exports", headers=writer)
    call("GET", "/api/exports", headers=writer)
    etag = call("PATCH", url, json={"signals": ["a"]}, headers=merge).headers["ETag"]
    call(
        "PATCH",
        url,
        json={"destination": {"sharedKey": LAKE_CUSTOMER_KEY}},
        headers={**merge, "If-Match": etag},
    )
    call("PUT", url, json=storage.adls("fs-secret/x/", notify=notify), headers=writer)
    # refusals that carry the secrets in their requests
    call("PUT", url, json=storage.adls("BAD/", notify=notify), headers=writer)
    call("PUT", url, json=storage.adls(granularity="minute", notify=notify), headers=writer)
    call("PUT", url, json=storage.adls(notify={**notify, "webhook": "https://127.0.0.1/"}), headers=writer)
    call("PATCH", url, json={"destination": {"sharedKey": LAKE_CUSTOMER_KEY, "extra": 1}}, headers=merge)
    call("PATCH", url, json={"destination": {"sharedKey": LAKE_CUSTOMER_KEY + "!"}}, headers=merge)
    call("PUT", url, json=storage.adls(key=BLOB_CUSTOMER_KEY), headers=writer)  # refused by the account
    call("PUT", url, json=storage.adls(), headers={**writer, "If-Match": '"stale"'})
    call("PUT", export_url(project, "blobby"), json=storage.blob(notify=notify), headers=writer)
    call("POST", url + "/disable", headers=writer)
    call("POST", url + "/enable", headers=writer)
    service.exports.set_status(project, "secretive", ExportStatus.POSTPONED, cause="authentication-failed")
    call("POST", url + "/resume", headers=writer)
    call("GET", url + "/health", headers=writer)
    call("PATCH", url, json={"destination": {"sharedKey": LAKE_CUSTOMER_KEY}}, headers=merge)
    entities = list(raw_entities(azurite))  # before the deletes, while the exports are stored
    call("DELETE", url, headers=writer)
    call("DELETE", export_url(project, "blobby"), headers=writer)

    assert len(responses) == 22
    for response in responses:
        text = response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in SECRETS:
            assert secret not in text, f"{response.request.method} {response.request.url} leaks a secret"
    assert caplog.records, "the operations log"
    for record in caplog.records:
        for secret in SECRETS:
            assert secret not in record_text(record), (
                f"log record {record.name}: {record.msg!r} leaks a secret"
            )
    ours = [(table, e) for table, e in entities if e.get("PartitionKey") == project]
    assert {e["RowKey"] for table, e in ours if table == "exports"} == {"secretive", "blobby"}
    for table, entity in entities:
        for name, value in entity.items():
            for secret in SECRETS:
                assert secret not in str(value), f"table {table}, property {name} holds a secret"
