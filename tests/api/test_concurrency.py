"""Concurrency: ETags, If-Match and If-None-Match, and concurrent edits that are never silently lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.exports import ExportRecord, Exports
from shared.model import Export
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored

pytestmark = pytest.mark.integration

MERGE = {"Content-Type": "application/merge-patch+json"}


def test_a_stale_if_match_answers_412_and_changes_nothing(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """After a change, the old ETag no longer matches: every conditional change answers 412 PreconditionFailed."""
    url = export_url(project, "e1")
    old = client.put(url, json=storage.adls(), headers=writer).headers["ETag"]
    current = client.patch(url, json={"signals": ["a"]}, headers={**writer, **MERGE, "If-Match": old})
    assert current.status_code == 200
    before = stored(service, project)
    stale = {**writer, "If-Match": old}
    attempts = [
        client.patch(url, json={"signals": ["b"]}, headers={**stale, **MERGE}),
        client.put(url, json=storage.adls(), headers=stale),
        client.delete(url, headers=stale),
        client.post(url + "/disable", headers=stale),
        client.post(url + "/enable", headers=stale),
        client.post(url + "/resume", headers=stale),
    ]
    for response in attempts:
        assert response.status_code == 412, response.text
        assert response.json()["error"]["code"] == "PreconditionFailed"
    assert stored(service, project) == before
    fresh = {**writer, "If-Match": current.headers["ETag"]}
    assert client.post(url + "/disable", headers=fresh).status_code == 200
    assert client.post(url + "/enable", headers={**writer, "If-Match": "*"}).status_code == 200


def test_if_none_match_star_creates_only(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """PUT with If-None-Match: * creates (201), and answers 412 when the export exists; If-Match on a missing export is 412."""
    url = export_url(project, "once")
    create_only = {**writer, "If-None-Match": "*"}
    assert client.put(url, json=storage.adls(), headers=create_only).status_code == 201
    before = stored(service, project)
    again = client.put(url, json=storage.adls(signals=["x"]), headers=create_only)
    assert again.status_code == 412 and again.json()["error"]["code"] == "PreconditionFailed"
    assert stored(service, project) == before
    missing = client.put(
        export_url(project, "never"), json=storage.adls(), headers={**writer, "If-Match": "*"}
    )
    assert missing.status_code == 412
    assert list(stored(service, project)) == ["once"]


def _interfere(
    monkeypatch: pytest.MonkeyPatch, service: Runtime, times: int, change: Callable[[Export], Export]
) -> None:
    """Make another writer change the export just before each of the API's next `times` writes."""
    original = Exports.replace
    remaining = [times]

    def replace_after_another_writer(
        self: Exports, export: Export, *, etag: str, created_at: Any
    ) -> ExportRecord:
        if remaining[0] > 0:
            remaining[0] -= 1
            theirs = service.exports.find(export.project_id, export.export_id)
            assert theirs is not None
            original(service.exports, change(theirs.export), etag=theirs.etag, created_at=theirs.created_at)
        return original(self, export, etag=etag, created_at=created_at)

    monkeypatch.setattr(Exports, "replace", replace_after_another_writer)


def test_an_edit_racing_another_is_retried_on_the_fresh_version(
    client: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    service: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without If-Match, an edit that loses the race is made again on the new version: both edits are kept."""
    url = export_url(project, "race")
    client.put(url, json=storage.adls(), headers=writer)
    _interfere(monkeypatch, service, 1, lambda e: replace(e, signals=frozenset({"theirs"})))
    response = client.patch(url, json={"granularity": "day"}, headers={**writer, **MERGE})
    assert response.status_code == 200, response.text
    assert response.json()["signals"] == ["theirs"] and response.json()["granularity"] == "day"
    export, _ = service.exports.get(project, "race")
    assert export.signals == frozenset({"theirs"}) and export.granularity.value == "day"


def test_an_edit_racing_with_if_match_answers_412(
    client: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    service: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With If-Match, an edit that loses the race answers 412 and the other writer's change stays."""
    url = export_url(project, "race")
    etag = client.put(url, json=storage.adls(), headers=writer).headers["ETag"]
    _interfere(monkeypatch, service, 1, lambda e: replace(e, signals=frozenset({"theirs"})))
    response = client.patch(url, json={"granularity": "day"}, headers={**writer, **MERGE, "If-Match": etag})
    assert response.status_code == 412
    export, _ = service.exports.get(project, "race")
    assert export.signals == frozenset({"theirs"}) and export.granularity.value == "hour"


def test_an_edit_that_keeps_losing_answers_409(
    client: TestClient,
    writer: dict[str, str],
    storage: Storage,
    project: str,
    service: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An edit that loses the race twice answers 409 ConcurrentModification instead of overwriting."""
    url = export_url(project, "race")
    client.put(url, json=storage.adls(), headers=writer)
    _interfere(monkeypatch, service, 2, lambda e: replace(e, signals=frozenset({"theirs"})))
    response = client.post(url + "/disable", headers=writer)
    assert response.status_code == 409 and response.json()["error"]["code"] == "ConcurrentModification"
    assert service.exports.get(project, "race")[0].enabled is True


def _patch(
    client: TestClient,
    url: str,
    headers: dict[str, str],
    barrier: threading.Barrier,
    results: dict[str, int],
    name: str,
    body: dict[str, Any],
) -> None:
    barrier.wait()
    results[name] = client.patch(url, json=body, headers=headers).status_code


def test_concurrent_patches_from_two_threads_are_never_silently_lost(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """Two threads patch different members at once, many times: every edit answered 200 is in the final export."""
    url = export_url(project, "busy")
    client.put(url, json=storage.adls(), headers=writer)
    headers = {**writer, **MERGE}
    for round_ in range(6):
        barrier = threading.Barrier(2)
        results: dict[str, int] = {}
        signals = [f"s{round_}"]
        granularity = "day" if round_ % 2 == 0 else "hour"

        threads = [
            threading.Thread(target=_patch, args=(client, url, headers, barrier, results, name, body))
            for name, body in (
                ("signals", {"signals": signals}),
                ("granularity", {"granularity": granularity}),
            )
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(results.values()) <= {200, 409}, results
        export, _ = service.exports.get(project, "busy")
        if results["signals"] == 200:
            assert export.signals == frozenset(signals), f"round {round_}: the signals edit was lost"
        if results["granularity"] == 200:
            assert export.granularity.value == granularity, f"round {round_}: the granularity edit was lost"
