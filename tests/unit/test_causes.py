"""A failed write turned into the cause a customer reads (shared.outcomes.classify): which answers of
their storage are theirs to fix (authentication, not found, rejected), which pass by themselves
(throttled, transient), and that anything else is the service's own fault, never blamed on them."""

from __future__ import annotations

import socket

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import StorageErrorCode

from shared.delivery import ConflictsPersist
from shared.health.rules import FATAL
from shared.outcomes import Cause, WriteFailure, classify, error_code, is_storage_error


def answer(
    status: int | None,
    code: str | None = None,
    kind: type[HttpResponseError] = HttpResponseError,
    reason: str | None = None,
) -> HttpResponseError:
    """A storage SDK's error for an HTTP answer: as azure.storage.*._shared.response_handlers's
    process_storage_error raises it, with the service's x-ms-error-code as `error_code`. Its message
    quotes the request (here a SAS token), which nothing may repeat."""
    error = kind(message=f"The request to https://a.blob.core.windows.net/c?sig=SECRET failed: {code}")
    error.status_code = status
    error.reason = reason
    error.error_code = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("status", "code", "cause"),
    [
        (403, "AuthenticationFailed", Cause.AUTHENTICATION),
        (403, "AuthorizationPermissionMismatch", Cause.PERMISSION_MISSING),  # a role missing (Entra ID)
        (403, "KeyBasedAuthenticationNotPermitted", Cause.SHARED_KEY_DISABLED),
        (403, None, Cause.AUTHENTICATION),
        (401, None, Cause.AUTHENTICATION),
        (409, "AccountIsDisabled", Cause.AUTHENTICATION),
        (400, "InvalidAuthenticationInfo", Cause.AUTHENTICATION),
        (404, "FilesystemNotFound", Cause.NOT_FOUND),
        (404, "ContainerNotFound", Cause.NOT_FOUND),
        (409, "ContainerBeingDeleted", Cause.NOT_FOUND),
        (409, "FilesystemBeingDeleted", Cause.NOT_FOUND),
        (404, None, Cause.NOT_FOUND),
        (503, "ServerBusy", Cause.THROTTLED),
        (500, "OperationTimedOut", Cause.THROTTLED),
        (503, "IngressOverAccountLimit", Cause.THROTTLED),
        (429, None, Cause.THROTTLED),
        (500, "InternalError", Cause.TRANSIENT),
        (500, None, Cause.TRANSIENT),
        (502, None, Cause.TRANSIENT),
        (503, None, Cause.TRANSIENT),
        (504, None, Cause.TRANSIENT),
        (408, None, Cause.TRANSIENT),
        (400, "InvalidHeaderValue", Cause.REJECTED),
        (409, "EndpointUnsupportedAccountFeatures", Cause.REJECTED),
        (412, "ConditionNotMet", Cause.REJECTED),
        (413, "RequestBodyTooLarge", Cause.REJECTED),
        (499, None, Cause.REJECTED),
        (None, None, Cause.REJECTED),
    ],
)
def test_each_storage_answer_gets_its_cause(status: int | None, code: str | None, cause: Cause) -> None:
    """The error code decides first (authentication, throttling, not found), then the status."""
    failure = classify(answer(status, code))
    assert failure.cause is cause
    assert failure.status == status


def test_server_errors_are_retried_never_fatal() -> None:
    """Every 5xx (and 408) is transient: retried, and the export is never postponed for it at once."""
    for status in (500, 501, 503, 599):
        failure = classify(answer(status))
        assert failure.cause is Cause.TRANSIENT and failure.cause.retryable
        assert failure.cause not in FATAL


def test_the_sdks_own_error_classes_decide_too() -> None:
    """ClientAuthenticationError is authentication whatever its status; the other subclasses go by status and code."""
    assert classify(answer(400, "Weird", ClientAuthenticationError)).cause is Cause.AUTHENTICATION
    assert classify(answer(404, "BlobNotFound", ResourceNotFoundError)).cause is Cause.NOT_FOUND
    assert classify(answer(409, "PathAlreadyExists", ResourceExistsError)).cause is Cause.REJECTED
    assert classify(answer(412, "ConditionNotMet", ResourceModifiedError)).cause is Cause.REJECTED


def test_the_code_shown_is_the_services_then_the_reason_then_the_status() -> None:
    """The customer reads the storage error code; without one, the HTTP reason; without that, HTTP<status>."""
    assert classify(answer(403, "AuthenticationFailed", reason="Forbidden")).code == "AuthenticationFailed"
    assert classify(answer(403, None, reason="Server failed to authenticate")).code == (
        "Server failed to authenticate"
    )
    assert classify(answer(418, None)).code == "HTTP418"
    assert classify(answer(418, "")).code == "HTTP418"


def test_a_code_given_as_an_enum_member_is_read_as_its_value() -> None:
    """The SDKs give some codes as enum members (StorageErrorCode, whose str() is its name), matched by value."""
    assert str(StorageErrorCode.AUTHENTICATION_FAILED) != "AuthenticationFailed"

    error = answer(400, None)
    error.error_code = StorageErrorCode.AUTHENTICATION_FAILED  # type: ignore[attr-defined]
    assert error_code(error) == "AuthenticationFailed"
    assert classify(error) == WriteFailure(Cause.AUTHENTICATION, "AuthenticationFailed", 400)
    busy = answer(200, None)
    busy.error_code = StorageErrorCode.SERVER_BUSY  # type: ignore[attr-defined]
    assert classify(busy).cause is Cause.THROTTLED
    assert error_code(ValueError("no code")) == ""
    assert error_code(answer(500, None)) == ""


def test_what_the_customer_reads_names_the_cause_code_and_status_and_never_the_request() -> None:
    """str(WriteFailure): `cause: code (HTTP status)`; the SDK's message, which quotes the URL, never shows."""
    failure = classify(answer(403, "AuthenticationFailed"))
    assert str(failure) == "authentication-failed: AuthenticationFailed (HTTP 403)"
    assert "SECRET" not in str(failure) and "SECRET" not in repr(failure)
    assert str(WriteFailure(Cause.TRANSIENT, "ConnectionError")) == "transient: ConnectionError"


@pytest.mark.parametrize(
    "error",
    [
        ServiceRequestError("Connection refused"),
        ServiceResponseError("the connection dropped after the request was sent"),
        ConnectionResetError("reset by peer"),
        TimeoutError("timed out"),
    ],
)
def test_network_failures_are_transient(error: Exception) -> None:
    """A request that could not be sent or answered passes by itself: transient, named by its type."""
    failure = classify(error)
    assert failure == WriteFailure(Cause.TRANSIENT, type(error).__name__)
    assert failure.cause.retryable


def test_an_account_whose_name_does_not_resolve_is_not_found() -> None:
    """DNS says no such host (the account was deleted or mistyped): not found, not a passing failure, however deep the cause."""
    direct = ServiceRequestError(
        "<urllib3.connection.HTTPSConnection>: Failed to resolve: Name or service not known"
    )
    assert classify(direct) == WriteFailure(Cause.NOT_FOUND, "AccountNotFound")
    wrapped = ServiceRequestError("Connection failed")
    try:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "getaddrinfo failed")
        except socket.gaierror as gai:
            raise ConnectionError("could not connect") from gai
    except ConnectionError as connection:
        wrapped.inner_exception = connection
    assert classify(wrapped).cause is Cause.NOT_FOUND
    with pytest.raises(ServiceRequestError) as during:
        _fail_while_resolving()
    assert classify(during.value).cause is Cause.NOT_FOUND


def _fail_while_resolving() -> None:
    """Raise as the SDK does while handling a resolver's error: the resolver's error is the context."""
    try:
        raise OSError("NameResolutionError: nodename nor servname provided")
    except OSError:
        raise ServiceRequestError("Connection failed")  # noqa: B904


def test_a_name_resolution_hint_too_deep_or_absent_is_transient() -> None:
    """The cause chain is followed 8 errors deep, no further: a refused connection stays transient."""
    chain: BaseException = OSError("Name or service not known")
    for depth in range(8):
        outer = ConnectionError(f"level {depth}")
        outer.__cause__ = chain
        chain = outer
    assert classify(chain).cause is Cause.TRANSIENT
    assert classify(chain.__cause__).cause is Cause.NOT_FOUND  # type: ignore[arg-type]
    assert classify(ConnectionRefusedError("Connection refused")).cause is Cause.TRANSIENT


def test_a_file_that_kept_changing_is_transient_and_a_failure_stays_as_classified() -> None:
    """ConflictsPersist (another writer, or the customer writing into the file) passes; a WriteFailure is kept."""
    assert classify(ConflictsPersist("moved 8 times")) == WriteFailure(Cause.TRANSIENT, "ConflictsPersist")
    known = WriteFailure(Cause.REJECTED, "InvalidHeaderValue", 400)
    assert classify(known) is known


@pytest.mark.parametrize(
    "error", [ValueError("a bug"), KeyError("x"), RuntimeError("boom"), AttributeError("y")]
)
def test_an_error_of_the_services_own_is_never_blamed_on_the_customer(error: Exception) -> None:
    """Anything but a storage or network error propagates unchanged, for the caller to contain."""
    with pytest.raises(type(error)) as raised:
        classify(error)
    assert raised.value is error
    assert not is_storage_error(error)


def test_what_classify_takes_is_what_callers_catch() -> None:
    """is_storage_error holds exactly for the errors classify turns into a cause."""
    for error in (
        answer(500),
        ServiceRequestError("x"),
        ServiceResponseError("x"),
        ConnectionError("x"),
        TimeoutError("x"),
        ConflictsPersist("x"),
        WriteFailure(Cause.THROTTLED, "ServerBusy"),
    ):
        assert is_storage_error(error)
        assert isinstance(classify(error), WriteFailure)


def test_only_throttling_and_transient_failures_pass_by_themselves() -> None:
    """retryable: the customer has nothing to do for throttled and transient; the rest needs them."""
    assert {cause for cause in Cause if cause.retryable} == {Cause.THROTTLED, Cause.TRANSIENT}
    assert set(FATAL) == {
        Cause.AUTHENTICATION,
        Cause.NOT_FOUND,
        Cause.REJECTED,
        Cause.PERMISSION_MISSING,
        Cause.SHARED_KEY_DISABLED,
        Cause.CONSENT_MISSING,
        Cause.CREDENTIAL_EXPIRED,
    }
