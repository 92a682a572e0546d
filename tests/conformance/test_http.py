"""HTTP rows: the management API behind the Functions host's `api` route prefix, through the
AsgiFunctionApp adapter, within the host's request limits."""

from __future__ import annotations

import asyncio
import json

import azure.functions as func
import pytest
from starlette.routing import Route

import function_app
from devstack.functions import registered_functions
from devstack.host import host_json
from shared.api.limits import MAX_BODY_BYTES
from shared.runtime import Runtime, use_runtime
from tests.conformance import sources


def test_the_api_lives_under_the_hosts_route_prefix_through_one_catch_all_function() -> None:
    """host.json keeps the default route prefix `api`; AsgiFunctionApp registers one anonymous function
    on `/{*route}` and hands the app the whole path, so every route of the app starts with /api/."""
    assert "routePrefix" not in host_json().get("extensions", {}).get("http", {})
    trigger = registered_functions()["management_api"].trigger
    assert trigger["route"] == sources.ASGI_ROUTE and trigger["authLevel"].lower() == "anonymous"
    paths = [route.path for route in function_app.app.middleware._app.routes if isinstance(route, Route)]
    assert paths and all(path.startswith(f"/{sources.HTTP_ROUTE_PREFIX}/") for path in paths)
    request = func.HttpRequest(
        method="GET", url="http://localhost:7071/api/openapi.json", headers={}, body=b""
    )
    response = asyncio.run(registered_functions()["management_api"].handler(request, None))
    assert response.status_code == 200
    assert all(path.startswith("/api/") for path in json.loads(response.get_body())["paths"])


def test_the_app_builds_nothing_in_its_lifespan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter runs the ASGI lifespan only on the first HTTP request, so the clients the Event Hub,
    timer and queue functions use are built on first use, never in a startup handler."""
    api = function_app.app.middleware._app
    assert api.router.on_startup == [] and api.router.on_shutdown == []
    built: list[object] = []
    monkeypatch.setattr(Runtime, "__init__", lambda self, *args, **kwargs: built.append(self))
    use_runtime(None)

    async def lifespan() -> None:
        async with api.router.lifespan_context(api):
            pass

    asyncio.run(lifespan())
    assert built == []


def test_requests_stay_within_the_hosts_limits() -> None:
    """The API refuses bodies over its own 1 MiB (413, tests/api/test_validation.py), far below the
    host's 100 MB, so both hosts answer alike; its longest URL is far below the host's 4 KB."""
    assert MAX_BODY_BYTES < sources.HTTP_MAX_REQUEST_BYTES
    longest = f"https://{'a' * 60}.azurewebsites.net/api/projects/{'p' * 63}/exports/{'e' * 63}/resume"
    longest += "?checkDestination=false"
    assert len(longest.encode()) < sources.HTTP_MAX_URL_BYTES // 8
