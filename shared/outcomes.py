"""How a write to a customer's destination ended, in causes a customer can act on.

Shared by the sinks (what to retry), the pipeline (what goes to the backlog) and health (what to tell
the customer). Messages are built from error codes and status only: an SDK exception's text can
quote a request, and nothing from a request may reach a log or a response.
"""

from __future__ import annotations

import re
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
    # Keyless destinations (Microsoft Entra ID, SAS) and accounts without shared keys.
    PERMISSION_MISSING = "permission-missing"  # no role (Entra ID), or a permission the SAS lacks
    SHARED_KEY_DISABLED = "shared-key-disabled"  # the account refuses its keys and SAS signed with them
    CONSENT_MISSING = "consent-missing"  # the service's application is not consented to in the tenant
    CREDENTIAL_EXPIRED = "credential-expired"  # the SAS is past its expiry

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
_BY_CODE = {
    # 403 with a token or SAS: the principal has no role granting the operation, or the SAS lacks the
    # permission (https://learn.microsoft.com/troubleshoot/azure/azure-storage/blobs/authentication/storage-troubleshoot-403-errors).
    "AuthorizationPermissionMismatch": "permission-missing",
    # 403 when allowSharedKeyAccess is false: the key and SAS signed with it are refused
    # (https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent).
    "KeyBasedAuthenticationNotPermitted": "shared-key-disabled",
}
# AuthenticationErrorDetail of a SAS outside its validity interval (Blob service, with a body).
_TIME_FRAME = "Signature not valid in the specified time frame"
# Microsoft Entra ID's errors of a token request: the application is not in the tenant (no admin consent,
# AADSTS700016), or consent is required (AADSTS65001) (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
_CONSENT_CODES = {700016, 65001}
_AADSTS = re.compile(r"AADSTS(\d{4,8})")
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
    if isinstance(error, ClientAuthenticationError) and not error_code(error):
        return _token_failure(error)
    if isinstance(error, HttpResponseError):
        status = error.status_code
        code = error_code(error) or str(getattr(error, "reason", None) or f"HTTP{status}")
        if code in _BY_CODE:
            return WriteFailure(Cause(_BY_CODE[code]), code, status)
        if code == "AuthenticationFailed" and _TIME_FRAME in str(error.message):
            return WriteFailure(Cause.CREDENTIAL_EXPIRED, code, status)
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


def _token_failure(error: ClientAuthenticationError) -> WriteFailure:
    """A credential that could not get a token for the storage account (azure-identity raises these
    before any request reaches the account): consent missing in the customer's tenant, another Entra
    error (its AADSTS code), the storage account's challenge naming another tenant than the export's
    (the account's 401 is the error's cause), or the managed identity unavailable (transient)."""
    from azure.identity import CredentialUnavailableError  # only on this path: no import cost otherwise

    if isinstance(error, CredentialUnavailableError):
        return WriteFailure(Cause.TRANSIENT, "ManagedIdentityUnavailable")
    found = _AADSTS.search(str(error.message))
    if found is not None:
        number = int(found.group(1))
        cause = Cause.CONSENT_MISSING if number in _CONSENT_CODES else Cause.AUTHENTICATION
        return WriteFailure(cause, f"AADSTS{number}", error.status_code)
    refused = error.__cause__  # azure-core raises the token request's error from the account's 401
    if isinstance(refused, HttpResponseError) and refused.response is not None:
        headers = getattr(refused.response, "headers", None) or {}
        code = error_code(refused) or str(headers.get("x-ms-error-code") or "")
        if code:
            return WriteFailure(Cause.AUTHENTICATION, code, refused.status_code)
    return WriteFailure(Cause.AUTHENTICATION, "TokenNotIssued", error.status_code)


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
