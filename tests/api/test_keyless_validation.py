"""The three ways to authenticate a destination, as the API takes them: one at a time, each checked
before anything is stored, refused with a code and a target and never quoted; a credential given in a
patch replaces the current one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.filedatalake import FileSystemSasPermissions, generate_file_system_sas
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from shared.api import rules
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url, stored
from tests.conftest import LAKE_CUSTOMER, LAKE_CUSTOMER_KEY

pytestmark = pytest.mark.integration

TENANT = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _outcome(check: Callable[[Any], Any], value: Any) -> Any:
    """What a rule answers: the value it takes, or the error it raises."""
    try:
        return check(value)
    except PydanticCustomError as error:
        return error


def _sas(filesystem: str, permission: str = "racwdlm") -> str:
    return generate_file_system_sas(
        LAKE_CUSTOMER,
        filesystem,
        LAKE_CUSTOMER_KEY,
        permission=FileSystemSasPermissions.from_string(permission),
        expiry=datetime.now(UTC) + timedelta(days=30),
    )


@given(st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.text(max_size=60)))
def test_a_tenant_id_is_a_guid_taken_in_lowercase_and_a_refusal_never_quotes_it(value: str) -> None:
    """Any text: a GUID (any case) is the tenant id, lowercased; anything else is InvalidTenantId, whose
    message does not hold the value."""
    answer = _outcome(rules.tenant_id, value)
    if isinstance(answer, PydanticCustomError):
        assert not _GUID.fullmatch(value.lower()) and answer.type == "InvalidTenantId"
        assert len(value) < 4 or value not in answer.message()
    else:
        assert _GUID.fullmatch(answer) and answer == value.lower()


@given(st.lists(st.sampled_from([*rules.CREDENTIALS, "type", "uri", "path"]), max_size=6))
def test_a_destination_takes_at_most_one_credential(names: list[str]) -> None:
    """Two methods at once are refused, naming both; none or one is fine (none: keep the current one)."""
    given_methods = {name for name in names if name in rules.CREDENTIALS}
    answer = _outcome(rules.one_credential, iter(names))  # any iterable, read once
    if isinstance(answer, PydanticCustomError):
        assert len(given_methods) > 1 and answer.type == "ConflictingCredentials"
        assert all(name in answer.message() for name in given_methods)
    else:
        assert len(given_methods) <= 1


def _refused(response: Any, code: str, target: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error.get("target")) == (code, target), error
    return dict(error)


def test_each_broken_credential_rule_is_a_400_with_its_code_and_target_and_stores_nothing(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """Two methods at once, Entra ID over http, a tenant id that is no GUID, a SAS that is no SAS, for
    another resource or lacking a permission: 400s at the property, the SAS never echoed."""
    fs = f"fs-{uuid.uuid4().hex[:10]}"
    sas = _sas(fs)
    weak = _sas(fs, "racwdl")
    signature = dict(part.split("=", 1) for part in weak.split("&"))["sig"]
    base = storage.adls(f"{fs}/x/")["destination"]
    del base["sharedKey"]
    cases = [
        ({**base, "sharedKey": LAKE_CUSTOMER_KEY, "sas": sas}, "ConflictingCredentials", "destination"),
        ({**base, "entra": {"tenantId": TENANT}}, "HttpsRequired", "destination.entra"),
        (
            {**base, "uri": "https://contoso.dfs.core.windows.net/", "entra": {"tenantId": "contoso"}},
            "InvalidTenantId",
            "destination.entra.tenantId",
        ),
        ({**base, "sas": weak}, "InvalidSas", "destination.sas"),
        ({**base, "sas": weak.replace("sr=c", "sr=b")}, "InvalidSas", "destination.sas"),
        ({**base, "sas": f"{storage.lake_uri}{fs}?{sas}"}, "InvalidSas", "destination.sas"),
        (
            {**base, "entra": {"tenantId": TENANT, "clientSecret": "x"}},
            "UnknownProperty",
            "destination.entra.clientSecret",
        ),
    ]
    for destination, code, target in cases:
        response = client.put(export_url(project, "k"), json={"destination": destination}, headers=writer)
        error = _refused(response, code, target)
        assert signature not in response.text and sas not in response.text, error
    assert stored(service, project) == {}


def test_a_patch_with_another_method_replaces_the_credential_and_removing_it_alone_is_refused(
    client: TestClient, writer: dict[str, str], storage: Storage, project: str, service: Runtime
) -> None:
    """sharedKey to sas by PATCH (checked against the account), then a new SAS; removing the SAS
    without another method is refused; the answer says the method and when the SAS expires."""
    fs = f"fs-{uuid.uuid4().hex[:10]}"
    url = export_url(project, "switch")
    merge = {**writer, "Content-Type": "application/merge-patch+json"}
    assert client.put(url, json=storage.adls(f"{fs}/x/"), headers=writer).status_code == 201
    switched = client.patch(url, json={"destination": {"sas": _sas(fs)}}, headers=merge)
    assert switched.status_code == 200, switched.text
    out = switched.json()["destination"]
    assert (out["authentication"], out["hasSharedKey"]) == ("sas", False) and out["sasExpiresAt"]
    assert service.exports.get(project, "switch")[0].destination.method.value == "sas"
    _refused(
        client.patch(url, json={"destination": {"sas": None}}, headers=merge),
        "MissingProperty",
        "destination.sas",
    )
    back = client.patch(
        url, json={"destination": {"sas": None, "sharedKey": LAKE_CUSTOMER_KEY}}, headers=merge
    )
    assert back.status_code == 200, back.text
    assert (
        back.json()["destination"]["authentication"] == "sharedKey"
        and "sasExpiresAt" not in back.json()["destination"]
    )
