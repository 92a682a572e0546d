"""How a write to a customer's destination ended, in causes a customer can act on.

Shared by the sinks (what to retry), the pipeline (what goes to the backlog) and health (what to tell
the customer). Messages are built from error codes and status only: an SDK exception's text can
quote a request, and nothing from a request may reach a log or a response.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.delivery import ConflictsPersist


class Cause(StrEnum):
    """Why a write failed."""

    AUTHENTICATION = "authentication-failed"
    NOT_FOUND = "not-found"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    REJECTED = "rejected"

    @property
    def retryable(self) -> bool:
        """Whether trying again soon can succeed without the customer doing anything."""
        return self in {Cause.THROTTLED, Cause.TRANSIENT}


_THROTTLING_CODES = {"ServerBusy", "OperationTimedOut", "IngressOverAccountLimit", "EgressOverAccountLimit"}
_NOT_FOUND_CODES = {
    "FilesystemNotFound",
    "ContainerNotFound",
    "ResourceNotFound",
    "AccountNotFound",
    "FilesystemBeingDeleted",
    "ContainerBeingDeleted",
}
_AUTH_CODES = {
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "InvalidAuthenticationInfo",
    "KeyBasedAuthenticationNotPermitted",
    "AccountIsDisabled",
}
_NAME_RESOLUTION_HINTS = ("NameResolutionError", "Name or service not known", "getaddrinfo", "nodename nor")


@dataclass(frozen=True)
class WriteFailure(Exception):
    """A write that did not succeed, classified. Safe to log and to show the customer."""

    cause: Cause
    code: str
    status: int | None = None

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{self.cause.value}: {self.code}{status}"


def error_code(error: BaseException) -> str:
    """The storage error code of an SDK error as a plain string ('' when there is none).

    The SDKs give some codes as enum members, which do not hash like their string values.
    """
    code = getattr(error, "error_code", None)
    if code is None:
        return ""
    return str(getattr(code, "value", code))


def classify(error: BaseException) -> WriteFailure:
    """Turn a storage or network error into the customer's cause; re-raise anything else.

    Only what the customer's storage answered (or the network on the way to it) is the customer's
    cause. Any other exception is a fault of the service's own, and must never be shown to the
    customer as a problem with their storage: it propagates unchanged, for the caller to contain.
    """
    if isinstance(error, WriteFailure):
        return error
    if isinstance(error, HttpResponseError):
        status = error.status_code
        code = error_code(error) or str(getattr(error, "reason", None) or f"HTTP{status}")
        if isinstance(error, ClientAuthenticationError) or code in _AUTH_CODES or status in {401, 403}:
            return WriteFailure(Cause.AUTHENTICATION, code, status)
        if code in _THROTTLING_CODES or status == 429:
            return WriteFailure(Cause.THROTTLED, code, status)
        if code in _NOT_FOUND_CODES or status == 404:
            return WriteFailure(Cause.NOT_FOUND, code, status)
        if status is not None and (status >= 500 or status == 408):
            return WriteFailure(Cause.TRANSIENT, code, status)
        return WriteFailure(Cause.REJECTED, code, status)
    if isinstance(error, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        if _is_name_resolution(error):
            return WriteFailure(Cause.NOT_FOUND, "AccountNotFound")
        return WriteFailure(Cause.TRANSIENT, type(error).__name__)
    if isinstance(error, ConflictsPersist):
        # The file kept changing under the writer (another writer, or the customer writing into it).
        return WriteFailure(Cause.TRANSIENT, "ConflictsPersist")
    raise error


STORAGE_ERRORS = (
    WriteFailure,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ConnectionError,
    TimeoutError,
    ConflictsPersist,
)
"""The errors `classify` turns into a customer's cause: what to catch around a call to their storage."""


def is_storage_error(error: BaseException) -> bool:
    """Whether an error is one `classify` turns into a customer's cause."""
    return isinstance(error, STORAGE_ERRORS)


def _is_name_resolution(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        text = f"{type(seen).__name__} {seen}"
        if any(hint in text for hint in _NAME_RESOLUTION_HINTS):
            return True
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "inner_exception", None)
    return False
