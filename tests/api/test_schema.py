"""The OpenAPI document, and schemathesis' generated requests against every operation: no 5xx."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.api import create_api
from shared.api.config import ApiSettings
from shared.runtime import Runtime
from tests.api.conftest import Storage, export_url

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 40


def test_openapi_document_declares_the_bearer_scheme_and_the_azure_errors(client: TestClient) -> None:
    """/api/openapi.json (public, like /api/docs) declares the bearer security scheme, the routes and no 422s."""
    document = client.get("/api/openapi.json").json()
    assert document["components"]["securitySchemes"]["EntraId"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": document["components"]["securitySchemes"]["EntraId"]["description"],
    }
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len(operations) == 11
    assert all(op["security"] == [{"EntraId": []}] for op in operations)
    assert all("422" not in op["responses"] and "400" in op["responses"] for op in operations)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    patch = document["paths"]["/api/projects/{projectId}/exports/{exportId}"]["patch"]
    assert list(patch["requestBody"]["content"]) == ["application/merge-patch+json"]
    assert client.get("/api/docs").status_code == 200


def test_generated_requests_never_get_a_server_error(
    service: Runtime,
    api_settings: ApiSettings,
    writer: dict[str, str],
    storage: Storage,
    project: str,
) -> None:
    """Schemathesis sends valid and invalid requests to every operation (as a contributor): never a 5xx, errors in the Azure shape."""
    # Generated destinations may only name loopback storage: the run contacts nothing beyond this machine.
    local = Runtime(dataclasses.replace(service.settings, allowed_storage_suffixes=("127.0.0.1",)))
    app = create_api(lambda: local.api, settings=api_settings)
    seed = TestClient(app)
    valid = {"PUT": storage.adls(), "PATCH": {"signals": ["requests"], "granularity": "day"}}
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        seeded = seed.put(export_url(project, "seeded"), json=storage.adls(), headers=writer)
        assert seeded.status_code in {200, 201}, seeded.text
        strategy = _cases(operation, project, valid.get(operation.method.upper()))

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(headers=writer)
            label = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.text[:300]}")
            elif response.status_code >= 400:
                body = response.json()
                if set(body) != {"error"} or not {"code", "message"} <= set(body["error"]):
                    failures.append(f"{label}: not the Azure error shape: {response.text[:300]}")

        run()
    assert operations == 11
    assert failures == []


def _cases(operation: Any, project: str, valid_body: dict[str, Any] | None) -> Any:
    """Valid and invalid cases, in the caller's project, some on the seeded export, some with a body
    that passes every rule."""
    names = {p.name for p in operation.path_parameters}
    strategies = []
    if valid_body is not None:
        strategies.append(operation.as_strategy(path_parameters={"projectId": project}, body=valid_body))
        strategies.append(
            operation.as_strategy(
                path_parameters={"projectId": project, "exportId": "seeded"}, body=valid_body
            )
        )
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        if "projectId" in names:
            strategies.append(operation.as_strategy(mode, path_parameters={"projectId": project}))
        else:
            strategies.append(operation.as_strategy(mode))
        if "exportId" in names:
            strategies.append(
                operation.as_strategy(mode, path_parameters={"projectId": project, "exportId": "seeded"})
            )
    return st.one_of(strategies)
