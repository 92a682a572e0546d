"""Error messages never quote a request's values, and the API's smaller faults: removing the signal
selection, and the trailing-slash redirect."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored

pytestmark = pytest.mark.integration

WORD = "Recognisable-Secret-0123456789"  # valid as a webhook secret or a signal name
KEY = base64.b64encode(b"recognisable storage key 0123456789ab").decode()  # shaped like an account key
SECRETS = (WORD, KEY)


def _paths(document: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every member of a document, nested ones too, and a member no resource has at each level."""
    if isinstance(document, dict):
        yield (*prefix, "unknownMember")
        for name, value in document.items():
            yield (*prefix, name)
            yield from _paths(value, (*prefix, name))


def _with(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    place = changed
    for name in path[:-1]:
        place = place[name]
    place[path[-1]] = value
    return changed


def _values(secret: str) -> list[Any]:
    return [secret, [secret], {"member": secret}, f"https://{secret}.example/x", [1, secret]]


def _quotes(response: httpx.Response, secret: str) -> bool:
    """Whether the answer shows the secret anywhere but in an accepted export's signal selection."""
    text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    if response.is_success and isinstance(response.json().get("signals"), list):
        text = text.replace(secret, "", response.json()["signals"].count(secret))
    return secret in text


def test_no_answer_quotes_a_value_sent_in_any_field_of_a_put_or_patch(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str
) -> None:
    """A recognisable secret in every field of PUT and PATCH bodies (and the query and If-Match) is in no answer."""
    merge = {**writer, "Content-Type": "application/merge-patch+json"}
    unchecked = "?checkDestination=false"
    existing = export_url(project, "patched")
    answers: list[tuple[str, httpx.Response]] = []
    bodies = {
        "adls": storage.adls(notify={"webhook": "https://hooks.customer.example/x"}),
        "blob": storage.blob(),
    }
    for kind, body in bodies.items():
        for path in _paths(body):
            for secret in SECRETS:
                for value in _values(secret):
                    url = export_url(project, f"{kind}-{len(answers)}") + unchecked
                    answers.append((secret, client.put(url, json=_with(body, path, value), headers=writer)))
                    assert client.put(existing + unchecked, json=body, headers=writer).is_success
                    patch = _with({}, path[:1], {}) if len(path) > 1 else {}
                    patch = _with(patch, path, value)
                    answers.append((secret, client.patch(existing + unchecked, json=patch, headers=merge)))
    for secret in SECRETS:
        answers.append(
            (
                secret,
                client.put(existing + f"?checkDestination={secret}", json=bodies["adls"], headers=writer),
            )
        )
        answers.append(
            (secret, client.put(existing, json=bodies["adls"], headers={**writer, "If-Match": secret}))
        )
        answers.append(
            (secret, client.patch(existing, json={}, headers={**merge, "If-Match": f'"{secret}"'}))
        )
    refused = [response for _, response in answers if response.status_code >= 400]
    assert len(refused) > len(answers) * 3 // 4  # most are refused, each with an error message
    assert all(response.status_code < 500 for _, response in answers)
    for secret, response in answers:
        assert not _quotes(response, secret), (
            response.request.method,
            response.request.content,
            response.text,
        )


def test_a_destination_type_that_is_no_type_is_refused_without_quoting_it(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str
) -> None:
    """A key sent in destination.type answers 400 InvalidDestinationType naming the types, not the key."""
    body = storage.adls()
    body["destination"]["type"] = KEY
    response = client.put(export_url(project, "typed"), json=body, headers=writer)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidDestinationType" and error["target"] == "destination.type"
    assert "'adls'" in error["message"] and "'blob'" in error["message"]
    assert KEY not in response.text


def test_removing_the_signal_selection_is_refused_with_what_to_send_instead(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """PATCH {"signals": null} answers 400 InvalidSignals saying to send "all"; the selection stays."""
    url = export_url(project, "selective")
    assert client.put(url, json=storage.adls(signals=["click"]), headers=writer).status_code == 201
    before = stored(service, project)
    merge = {**writer, "Content-Type": "application/merge-patch+json"}
    response = client.patch(url, json={"signals": None}, headers=merge)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["target"]) == ("InvalidSignals", "signals")
    assert '"all"' in error["message"]
    assert stored(service, project) == before
    assert client.get(url, headers=writer).json()["signals"] == ["click"]
    widened = client.patch(url, json={"signals": "all"}, headers=merge)
    assert widened.status_code == 200 and widened.json()["signals"] == "all"


@pytest.mark.parametrize("authenticated", [False, True])
def test_a_trailing_slash_is_not_redirected_to_the_host_the_request_names(
    client: TestClient, writer: dict[str, str], project: str, authenticated: bool
) -> None:
    """A path with a trailing slash answers 404 in the Azure shape: no redirect built from the Host header."""
    headers = {"Host": "attacker.example", **(writer if authenticated else {})}
    for path in (
        f"/api/projects/{project}/exports/",
        f"/api/projects/{project}/exports/e1/",
        "/api/exports/",
    ):
        response = client.get(path, headers=headers, follow_redirects=False)
        assert response.status_code == 404, (path, response.status_code)
        assert response.json()["error"]["code"] == "NotFound"
        assert "location" not in response.headers
        assert "attacker.example" not in response.text
