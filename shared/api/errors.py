"""Every error the API answers, in the Azure error shape:

    {"error": {"code": "...", "message": "...", "target": "...", "details": [...], "innererror": {...}}}

`ApiError` is raised by the API's own code; `install_error_handlers` turns it, FastAPI's request
validation errors, routing's 404/405 and anything unexpected into that shape. Messages never quote a
request's values (a value may be a key): they name the property and the rule.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.api.rules import ID_RULE

log = logging.getLogger("signals_export.api")

ERROR_MEDIA_TYPE = "application/json"

# Union members that pydantic puts in an error's location; they are not properties of the document.
_UNION_TAGS = {"adls", "blob"}

_PYDANTIC_CODES = {
    "missing": "MissingProperty",
    "extra_forbidden": "UnknownProperty",
    "json_invalid": "InvalidJson",
    "union_tag_invalid": "InvalidDestinationType",
    "union_tag_not_found": "MissingProperty",
}

# Kinds whose pydantic message states the rule without the input (pydantic-core's templates, such as
# "Input should be 'hour' or 'day'"). Every other kind gets a message of ours: pydantic's may quote the
# input (union_tag_invalid quotes the tag sent; value_error quotes a validator's text).
_SAFE_PYDANTIC_MESSAGES = frozenset(
    {
        "literal_error",
        "enum",
        "string_type",
        "string_too_short",
        "string_too_long",
        "too_short",
        "too_long",
        "list_type",
        "bool_type",
        "bool_parsing",
        "int_type",
        "int_parsing",
        "model_type",
        "model_attributes_type",
        "dict_type",
    }
)

_HTTP_CODES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    411: "LengthRequired",
    412: "PreconditionFailed",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}

_HTTP_MESSAGES = {
    404: "No such resource. The API's resources are under /api/projects/{projectId}/exports "
    "(paths without a trailing slash).",
    405: "The resource does not support this method; the Allow header lists those it does.",
}


class ApiError(Exception):
    """An error answered to the caller. `message` must be safe to show: no keys, no secrets."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        innererror: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = list(details)
        self.innererror = dict(innererror) if innererror else None
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        if self.innererror:
            error["innererror"] = self.innererror
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(code: str, message: str, target: str | None = None) -> ApiError:
    return ApiError(400, code, message, target=target)


def not_found(project_id: str, export_id: str) -> ApiError:
    """The export of the request's path does not exist (for this caller). The ids are the request's
    own: not repeated back."""
    return ApiError(
        404, "ExportNotFound", "No export with this id exists in this project.", target="exportId"
    )


def unreadable() -> ApiError:
    """The export's stored configuration cannot be read: the service's problem, not the caller's."""
    return ApiError(
        500,
        "ExportUnreadable",
        "The service cannot read this export's stored configuration (for example, its key was sealed "
        "under a service key that is no longer configured). Its health view says more; an operator "
        "must restore the key or the caller must set the export again with PUT.",
    )


def precondition_failed(message: str = "") -> ApiError:
    return ApiError(
        412,
        "PreconditionFailed",
        message or "The export changed since the given ETag was read: read it again and retry.",
        target="If-Match",
    )


def validation_error(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """One ApiError from pydantic's (or FastAPI's) error list: the first error on top, all in details."""
    details = [_detail(error) for error in errors] or [
        {"code": "InvalidRequestContent", "message": "The request is not valid."}
    ]
    first = details[0]
    return ApiError(
        400,
        first["code"],
        first["message"],
        target=first.get("target"),
        details=details if len(details) > 1 else (),
    )


def _detail(error: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(error.get("type", ""))
    loc = tuple(error.get("loc", ()))
    source = loc[0] if loc and loc[0] in {"body", "path", "query", "header"} else None
    target = _target(loc[1:] if source else loc)
    if kind == "json_invalid":
        return {"code": "InvalidJson", "message": "The request body is not valid JSON."}
    if source == "body" and not target and kind == "missing":
        return {"code": "MissingRequestBody", "message": "A JSON request body is required."}
    if source == "path" and target:
        code = f"Invalid{target[:1].upper()}{target[1:]}"
        return {"code": code, "message": f"{target} must be {ID_RULE}.", "target": target}
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        target = f"{target}.type" if target else "type"
        if kind == "union_tag_not_found":
            return {"code": "MissingProperty", "message": f"{target} is required.", "target": target}
        expected = str((error.get("ctx") or {}).get("expected_tags", "'adls', 'blob'"))
        return {
            "code": "InvalidDestinationType",
            "message": f"{target} must be one of {expected}.",
            "target": target,
        }
    if source == "body" and not target and kind.endswith("_type"):
        return {"code": "InvalidRequestContent", "message": "The request body must be a JSON object."}
    if kind[:1].isupper():  # our own rules (PydanticCustomError): the type is the code
        code = kind
        message = str(error.get("msg", ""))
    else:
        code = _PYDANTIC_CODES.get(kind, "InvalidValue")
        if kind == "missing":
            message = f"{target or 'A property'} is required."
        elif kind == "extra_forbidden":
            message = f"{target} is not a property of this resource (unknown or read-only)."
        elif kind in _SAFE_PYDANTIC_MESSAGES:
            message = f"{target or 'The request'}: {error.get('msg', 'invalid value')}."
        else:
            message = f"{target or 'The request'} is not valid."
    if source == "query" and code == "InvalidValue":
        code = "InvalidQueryParameter"
    detail = {"code": code, "message": message}
    if target:
        detail["target"] = target
    return detail


def _target(loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for index, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in _UNION_TAGS and index > 0 and loc[index - 1] == "destination":
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


async def _on_api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error.response()


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return validation_error(list(error.errors())).response()


async def _on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    status = error.status_code
    code = _HTTP_CODES.get(status, "BadRequest" if status < 500 else "InternalServerError")
    message = _HTTP_MESSAGES.get(status) or (
        str(error.detail) if isinstance(error.detail, str) else "The request failed."
    )
    return ApiError(status, code, message, headers=error.headers).response()


def internal_error(error: BaseException) -> ApiError:
    """Log an unexpected error without its message (an SDK's message may quote a request) and answer 500."""
    trace = "".join(traceback.format_tb(error.__traceback__))
    log.error("unexpected error", extra={"error_type": type(error).__name__, "trace": trace})
    return ApiError(500, "InternalServerError", "The service failed to handle the request. Try again later.")


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    return internal_error(error).response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
