"""The guard every API route runs before anything else, body parsing included:

1. authenticate the caller (401 otherwise), and check the path's ids (400 InvalidProjectId and
   InvalidExportId);
2. on a route under `/api/projects/{projectId}`, check the caller's grant on that project: none is a
   404 (the project does not exist for them), a reader's change is a 403;
3. check the body's media type on PUT (`application/json`) and PATCH (`application/merge-patch+json`
   or `application/json`): 415 otherwise; and its declared length (413 over 1 MiB).

Anything unexpected that a route raises becomes a logged 500 in the Azure error shape.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.api.auth import Access, Authenticator, Caller
from shared.api.errors import ApiError, bad_request, internal_error
from shared.api.limits import MAX_BODY_BYTES, too_large
from shared.api.rules import ID_RULE, valid_id

MEDIA_TYPES = {
    "PUT": ("application/json",),
    "PATCH": ("application/merge-patch+json", "application/json"),
}
_READS = {"GET", "HEAD", "OPTIONS"}


class GuardedRoute(APIRoute):
    """An APIRoute that authenticates, authorizes and checks the media type first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                authenticator: Authenticator = request.app.state.authenticator
                caller: Caller = await run_in_threadpool(authenticator.authenticate, request.headers)
                request.state.caller = caller
                check_ids(request.path_params)
                project_id = request.path_params.get("projectId")
                if project_id is not None:
                    needed = Access.READ if request.method in _READS else Access.WRITE
                    caller.require(str(project_id), needed, request.path_params.get("exportId"))
                check_media_type(request)
                check_length(request)
                return await handler(request)
            except (ApiError, RequestValidationError, StarletteHTTPException):
                raise
            except Exception as error:  # noqa: BLE001  # the API's boundary: a bug of ours is a plain 500
                raise internal_error(error) from None

        return guarded


def check_ids(path_params: Mapping[str, Any]) -> None:
    for name in ("projectId", "exportId"):
        value = path_params.get(name)
        if value is not None and not valid_id(str(value)):
            raise bad_request(
                f"Invalid{name[:1].upper()}{name[1:]}",
                f"{name} must be {ID_RULE}.",
                name,
            )


def check_length(request: Request) -> None:
    """Refuse a declared body over the limit before reading it (BodyLimit counts undeclared ones)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large()


def check_media_type(request: Request) -> None:
    accepted = MEDIA_TYPES.get(request.method)
    if accepted is None:
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in accepted:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"The request body must be sent as {' or '.join(accepted)}.",
            target="Content-Type",
        )
