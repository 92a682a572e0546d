"""The management API as a FastAPI app: served by the Functions host (function_app.py mounts it with
`func.AsgiFunctionApp`) or, locally, by uvicorn:

    uvicorn --factory shared.runtime:management_api --port 7071

Nothing is built at start-up (the Functions adapter runs an app's lifespan only on its first
request): each request takes what it uses from `services`, which the composition root (shared.runtime)
builds lazily, once per process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.api.auth import Authenticator
from shared.api.config import ApiSettings
from shared.api.errors import install_error_handlers
from shared.api.limits import BodyLimit
from shared.api.operations import ApiServices
from shared.api.routes import router
from shared.pane import router as pane

DESCRIPTION = """\
Configure continuous exports of a project's signals to the customer's Azure Data Lake Storage Gen2
or Blob storage.

Every route needs a Microsoft Entra ID access token (`Authorization: Bearer ...`). Its app roles
grant projects: `Exports.Read.<projectId>` (read), `Exports.Write.<projectId>` and
`Exports.Owner.<projectId>` (read and change), `Exports.Admin` (every project). Changes take an
`If-Match` ETag; errors use the Azure error shape `{"error": {"code", "message", "target"}}`.
"""


def create_api(services: Callable[[], ApiServices], *, settings: ApiSettings | None = None) -> FastAPI:
    """The API app. `settings`: the API's own settings (default: read from the environment on the
    first request)."""
    api = FastAPI(
        title="signals-export management API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # No redirect from a trailing slash: Starlette's builds its Location from the Host header,
        # before authentication. Such a path is a 404 like any other unknown one.
        redirect_slashes=False,
    )
    api.add_middleware(BodyLimit)
    api.state.services = services
    api.state.authenticator = Authenticator(settings if settings is not None else ApiSettings.from_env)
    install_error_handlers(api)
    api.include_router(router)
    api.include_router(pane)  # the management pane, at /api/portal/
    api.openapi = _openapi(api)  # type: ignore[method-assign]
    return api


def _openapi(api: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's document without its default 422 responses: the API answers 400 in the Azure shape."""

    def build() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = get_openapi(
                title=api.title, version=api.version, description=api.description, routes=api.routes
            )
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = document.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            api.openapi_schema = document
        return api.openapi_schema

    return build
