"""The local host, in-process on free ports: the functions of function_app.py behind the management
API, the local hub, the timer and the queue, on Azurite and the ADLS Gen2 emulator."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.filedatalake import DataLakeServiceClient

from devstack.host import LAKE_ACCOUNT, HostOptions, LocalHost, key_encryption_key, local_settings
from devstack.producer import LocalTarget
from devstack.queue_runner import decode
from devstack.sources import BatchPolicy, read_ndjson
from shared.settings import DEADLETTER_CONTAINER

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHost]:
    """One local host for the module, on free ports, with its own data folder."""
    options = HostOptions(
        data_dir=tmp_path_factory.mktemp("data"),
        port=0,
        storage_port=0,
        partitions=3,
        batch=BatchPolicy(max_batch_size=512, min_batch_size=64, max_wait=0.2),
        queue_polling=0.5,
    )
    with LocalHost(options) as running:
        yield running


def api(host: LocalHost, *projects: str) -> httpx.Client:
    token = host.issuer.mint([f"Exports.Write.{p}" for p in projects])
    return httpx.Client(base_url=host.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def lake_lines(host: LocalHost, filesystem: str) -> dict[str, list[bytes]]:
    service = DataLakeServiceClient(
        host.lake_url, credential={"account_name": LAKE_ACCOUNT, "account_key": host.keys[LAKE_ACCOUNT]}
    )
    fs = service.get_file_system_client(filesystem)
    return {
        p.name: fs.get_file_client(p.name).download_file().readall().splitlines()
        for p in fs.get_paths(recursive=True)
        if not p.is_directory
    }


def test_the_producer_to_the_local_host_delivers_signals_that_land_in_a_destination(host: LocalHost) -> None:
    """An export made through the API; NDJSON posted by the producer; each of the project's signals is
    read back once from the ADLS Gen2 files, the other project's nowhere."""
    client = api(host, "alpha")
    created = client.put(
        "/api/projects/alpha/exports/lake",
        json={
            "destination": {
                "type": "adls",
                "uri": host.lake_url + "/",
                "path": "alpha-fs/out/",
                "sharedKey": host.keys[LAKE_ACCOUNT],
            }
        },
    )
    assert created.status_code == 201, created.text
    lines = [
        json.dumps({"name": ["click", "view"][n % 2], "n": n, "projectId": "alpha" if n % 3 else "beta"})
        for n in range(150)
    ]
    target = LocalTarget(host.url, chunk_size=40)
    assert target.check()["source"]["kind"] == "local"
    sent = target.send(read_ndjson([line.encode() for line in lines]))
    assert sent == 150 and target.wait(30)
    files = lake_lines(host, "alpha-fs")
    assert all(path.startswith("out/") and path.endswith(".jsonl") for path in files)
    found = sorted(line for rows in files.values() for line in rows)
    assert found == sorted(line.encode() for line in lines if '"alpha"' in line)
    status = client.get("/_local/status").json()["source"]
    assert sum(p["delivered"] for p in status["partitions"].values()) >= 150
    assert status["pending"] == 0


def test_a_line_without_a_project_is_dead_lettered_by_the_function(host: LocalHost) -> None:
    """The local source sends a line with no projectId and no --project without one: the function
    dead-letters it (missing-project) in the service's storage, as on the real service."""
    target = LocalTarget(host.url)
    target.send(read_ndjson([b'{"name":"orphan","marker":"dead-letter-me"}\n']))
    assert target.wait(30)
    with BlobServiceClient.from_connection_string(host.settings["AzureWebJobsStorage"]) as service:
        container = service.get_container_client(DEADLETTER_CONTAINER)
        bodies = [container.download_blob(b.name).readall() for b in container.list_blobs()]
    assert any(b"missing-project" in body for body in bodies)


def test_the_timer_runs_now_through_the_admin_route_and_on_its_schedule(host: LocalHost) -> None:
    """POST /admin/functions/check_health runs the timer function at once, like the Functions host's
    admin API; the schedule is HEALTH_SCHEDULE's NCRONTAB."""
    assert host.timer is not None
    before = host.timer.runs
    response = httpx.post(f"{host.url}/admin/functions/check_health", timeout=30)
    assert response.status_code == 202, response.text
    assert host.timer.runs == before + 1
    status = httpx.get(f"{host.url}/_local/status").json()
    assert status["timer"]["schedule"] == "0 */1 * * * *"
    assert status["timer"]["next"].endswith(":00Z")
    assert httpx.get(f"{host.url}/admin/host/status").json()["state"] == "Running"


def test_the_queue_function_replays_through_the_queue_with_poison_after_max_dequeue(host: LocalHost) -> None:
    """A message the queue function cannot take is retried, then moved to the poison queue by the
    queue trigger's rules (host.json maxDequeueCount), Base64-encoded like the queue's messages."""
    assert host.queue is not None and host.runtime is not None
    runner = host.queue.runner
    runner.retry_delay = 0
    response = httpx.post(f"{host.url}/admin/functions/replay_backlog", json={"input": "not a work item"})
    assert response.status_code == 202
    poison = host.runtime.poison_queue

    def poisoned() -> bool:
        try:
            return any(
                decode(m.content, "base64") == b"not a work item"
                for m in poison.peek_messages(max_messages=32)
            )
        except Exception:
            return False

    from devstack.triggers import wait_until

    assert wait_until(poisoned, 30)
    assert runner.max_dequeue_count == 5


def test_the_host_sets_the_settings_the_code_reads_for_local_storage(host: LocalHost) -> None:
    """Local emulator hosts are allowed storage endpoints, private webhooks are allowed, the API trusts
    development tokens, and a KEY_ENCRYPTION_KEY is kept (private) in the data folder."""
    settings = host.settings
    assert "127.0.0.1" in settings["ALLOWED_STORAGE_SUFFIXES"].split(",")
    assert settings["ALLOW_PRIVATE_WEBHOOKS"] == "true"
    assert settings["HEALTH_SCHEDULE"] == "0 */1 * * * *"
    assert Path(settings["AUTH_JWKS"]).is_file()
    key_file = host.data_dir / "key-encryption-key"
    assert key_file.read_text().strip() == os.environ["KEY_ENCRYPTION_KEY"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    unauthenticated = httpx.get(f"{host.api_url}/projects/alpha/exports")
    assert unauthenticated.status_code == 401


def test_the_key_encryption_key_is_made_once_and_the_environment_wins(tmp_path: Path) -> None:
    """The first run makes the key, later runs read it back; a setting in the environment or in
    local.settings.json is not overridden by the host's default."""
    first = key_encryption_key(tmp_path)
    assert key_encryption_key(tmp_path) == first
    values = local_settings(
        storage_connection="conn", key=first, token_settings={}, template={"KEY_ENCRYPTION_KEY": "given"}
    )
    assert values["KEY_ENCRYPTION_KEY"] == "given" and values["AzureWebJobsStorage"] == "conn"
