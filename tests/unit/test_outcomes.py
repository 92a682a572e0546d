"""Causes (shared.outcomes.classify): what a customer's storage or the network answered, in words the
customer can act on; anything else is a fault of the service's own and is never blamed on them.

The storage errors are built the way the SDKs build them: azure-core's HttpResponseError takes the
status and reason from the response (azure/core/exceptions.py, azure-core 1.41.0), and the storage
SDKs' `process_storage_error` picks the exception class and sets `error_code` from the
`x-ms-error-code` header (azure/storage/blob/_shared/response_handlers.py, azure-storage-blob 12.31.1;
the same file in azure-storage-file-datalake 12.26.1). Network errors are those azure-core's requests
transport raises (azure/core/pipeline/transport/_requests_basic.py): ServiceRequestError wrapping
requests' ConnectionError, which wraps urllib3's.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, NoReturn

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob._shared.response_handlers import process_storage_error as blob_error
from azure.storage.filedatalake._shared.response_handlers import process_storage_error as lake_error
from hypothesis import given
from hypothesis import strategies as st
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ReadTimeoutError

from shared.delivery import ConflictsPersist, FileGone, PositionConflict
from shared.outcomes import STORAGE_ERRORS, Cause, WriteFailure, classify, is_storage_error

HOST = "customer.dfs.core.windows.net"
SECRET = "sig=c2VjcmV0IHNhcyB0b2tlbg%3D%3D"  # what a request may carry, and nothing may repeat


class Response:
    """The parts of an HTTP response that HttpResponseError and process_storage_error read."""

    def __init__(self, status: int, reason: str, code: str | None, body: bytes = b"") -> None:
        self.request: Any = None  # not read
        self.status_code = status
        self.reason = reason
        self.headers = {"x-ms-error-code": code} if code else {}
        self.content_type = "application/xml" if body else None
        self._body = body

    def body(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()


def answered(
    status: int, code: str | None, reason: str = "Error", *, sdk: Callable[[Any], NoReturn] = blob_error
) -> HttpResponseError:
    """The exception a storage client raises for a response: the SDK's own error processing."""
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{reason} {SECRET}</Message></Error>"
    response = Response(status, reason, code, body.encode() if code else b"")
    try:
        sdk(HttpResponseError(response=response))
    except HttpResponseError as error:
        return error
    raise AssertionError("process_storage_error always raises")


def unreachable(reason: Exception) -> ServiceRequestError:
    """What azure-core's requests transport raises when a connection cannot be made."""
    wrapped = requests.exceptions.ConnectionError(MaxRetryError(pool(), f"/fs/file?{SECRET}", reason))
    return ServiceRequestError(wrapped, error=wrapped)


def pool() -> HTTPSConnectionPool:
    return HTTPSConnectionPool(HOST, 443)  # not connected


def connection() -> HTTPSConnection:
    return HTTPSConnection(HOST, 443)  # not connected: urllib3 names it in its errors


def name_not_known() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    ("status", "code", "cause"),
    [
        (403, "AuthenticationFailed", Cause.AUTHENTICATION),
        (403, "AuthorizationFailure", Cause.AUTHENTICATION),
        (403, "AuthorizationPermissionMismatch", Cause.AUTHENTICATION),
        (403, "KeyBasedAuthenticationNotPermitted", Cause.AUTHENTICATION),
        (403, "AccountIsDisabled", Cause.AUTHENTICATION),
        (400, "InvalidAuthenticationInfo", Cause.AUTHENTICATION),
        (401, None, Cause.AUTHENTICATION),
        (403, None, Cause.AUTHENTICATION),
        (404, "FilesystemNotFound", Cause.NOT_FOUND),
        (404, "ContainerNotFound", Cause.NOT_FOUND),
        (404, "ResourceNotFound", Cause.NOT_FOUND),
        (404, "PathNotFound", Cause.NOT_FOUND),
        (409, "FilesystemBeingDeleted", Cause.NOT_FOUND),
        (409, "ContainerBeingDeleted", Cause.NOT_FOUND),
        (404, None, Cause.NOT_FOUND),
        (503, "ServerBusy", Cause.THROTTLED),
        (500, "OperationTimedOut", Cause.THROTTLED),
        (503, "IngressOverAccountLimit", Cause.THROTTLED),
        (503, "EgressOverAccountLimit", Cause.THROTTLED),
        (429, None, Cause.THROTTLED),
        (500, "InternalError", Cause.TRANSIENT),
        (502, None, Cause.TRANSIENT),
        (408, None, Cause.TRANSIENT),
        (400, "InvalidHeaderValue", Cause.REJECTED),
        (409, "FeatureNotSupportedOnHierarchicalNamespace", Cause.REJECTED),
        (412, "ConditionNotMet", Cause.REJECTED),
        (413, "RequestBodyTooLarge", Cause.REJECTED),
    ],
)
@pytest.mark.parametrize("sdk", [blob_error, lake_error], ids=["blob", "datalake"])
def test_a_storage_answer_is_the_cause_its_status_and_code_say(
    status: int, code: str | None, cause: Cause, sdk: Callable[[Any], NoReturn]
) -> None:
    """What the account answered, as either SDK raises it, is the documented cause (README: causes),
    named by its error code (or the status when it sent none)."""
    failure = classify(answered(status, code, sdk=sdk))
    assert failure == WriteFailure(cause, code or "Error", status)


def test_the_sdk_exception_class_alone_decides_authentication() -> None:
    """A ClientAuthenticationError is the key refused, whatever its status or code."""
    error = ClientAuthenticationError(response=Response(400, "Bad Request", None))
    assert classify(error).cause is Cause.AUTHENTICATION


def test_an_answer_without_a_code_or_reason_is_named_by_its_status() -> None:
    """Nothing but a status: the customer still reads something to look up."""
    assert classify(HttpResponseError(response=Response(418, "", None))) == WriteFailure(
        Cause.REJECTED, "HTTP418", 418
    )


@pytest.mark.parametrize(
    "error",
    [
        unreachable(NameResolutionError(HOST, connection(), name_not_known())),
        ServiceRequestError("Connection failed", error=name_not_known()),
        ServiceRequestError(
            "Connection failed", error=unreachable(NameResolutionError(HOST, connection(), name_not_known()))
        ),
    ],
    ids=["urllib3", "inner", "inner-of-inner"],
)
def test_an_account_whose_name_no_longer_resolves_is_not_found(error: Exception) -> None:
    """A deleted account's host name stops resolving: not-found, however deep the transport wrapped it."""
    assert classify(error) == WriteFailure(Cause.NOT_FOUND, "AccountNotFound")


def connection_error_from_gaierror() -> None:
    try:
        raise name_not_known()
    except socket.gaierror as gaierror:
        raise ConnectionError("connection failed") from gaierror


def timeout_while_handling_gaierror() -> None:
    try:
        raise name_not_known()
    except socket.gaierror:
        raise TimeoutError("timed out") from None  # the context is kept, the cause suppressed


def test_a_name_resolution_error_found_through_the_exception_chain_is_not_found() -> None:
    """`raise ... from` (the cause) and an error raised while handling another (the context) count."""
    with pytest.raises(ConnectionError) as caused:
        connection_error_from_gaierror()
    assert classify(caused.value).cause is Cause.NOT_FOUND
    with pytest.raises(TimeoutError) as during:
        timeout_while_handling_gaierror()
    assert classify(during.value).cause is Cause.NOT_FOUND


@pytest.mark.parametrize(
    "error",
    [
        unreachable(NewConnectionError(connection(), "Failed to establish a new connection: [Errno 111]")),
        ServiceResponseError(
            "Connection aborted", error=ConnectionResetError(104, "Connection reset by peer")
        ),
        ServiceResponseError("read timeout", error=ReadTimeoutError(pool(), "/fs/file", "Read timed out.")),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("the write's deadline passed"),
    ],
    ids=["refused", "reset", "read-timeout", "builtin-reset", "builtin-timeout"],
)
def test_a_connection_that_fails_or_times_out_is_transient(error: Exception) -> None:
    """The account is there but did not answer this time: retried, and named by the error's type."""
    assert classify(error) == WriteFailure(Cause.TRANSIENT, type(error).__name__)


def test_a_file_that_kept_changing_under_the_writer_is_transient() -> None:
    """ConflictsPersist (another writer, or the customer writing into the file): try again later."""
    assert classify(ConflictsPersist("changed 8 times")) == WriteFailure(Cause.TRANSIENT, "ConflictsPersist")


def test_a_classified_failure_is_kept_as_it_is() -> None:
    """Classifying twice changes nothing (a failure raised from a retry loop is classified again)."""
    failure = WriteFailure(Cause.THROTTLED, "ServerBusy", 503)
    assert classify(failure) is failure


def test_what_the_customer_reads_never_repeats_the_request() -> None:
    """The storage's message and the URL can quote the request (a SAS token): the failure's text is
    the cause, code and status only."""
    for error in (
        answered(403, "AuthenticationFailed", "Server failed to authenticate the request."),
        unreachable(NewConnectionError(connection(), f"refused for /fs/file?{SECRET}")),
    ):
        assert SECRET in str(error)  # the SDK's text does quote it
        assert SECRET not in str(classify(error)) and SECRET not in repr(classify(error))
    assert str(classify(answered(404, "FilesystemNotFound"))) == "not-found: FilesystemNotFound (HTTP 404)"


class OurBug(Exception):
    """An exception of the service's own."""


bugs = st.sampled_from(
    [
        KeyError("a bug"),
        TypeError("a bug"),
        ValueError("a bug"),
        AttributeError("a bug"),
        IndexError("a bug"),
        ZeroDivisionError("a bug"),
        RuntimeError("a bug"),
        AssertionError("a bug"),
        LookupError("a bug"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "a bug"),
        OurBug("a bug"),
        PositionConflict("fs/file"),  # delivery's own signals, handled before they could reach classify
        FileGone("fs/file"),
    ]
)


@given(bugs)
def test_any_other_exception_is_raised_unchanged_never_blamed_on_the_customer(error: Exception) -> None:
    """A bug of ours is not the customer's cause: classify raises the very exception it was given."""
    with pytest.raises(type(error)) as raised:
        classify(error)
    assert raised.value is error
    assert not is_storage_error(error)


storage_errors = st.sampled_from(
    [
        answered(403, "AuthenticationFailed"),
        answered(404, "FilesystemNotFound", sdk=lake_error),
        answered(503, "ServerBusy"),
        answered(400, "InvalidHeaderValue"),
        ResourceNotFoundError("gone"),
        ResourceExistsError("there"),
        unreachable(NameResolutionError(HOST, connection(), name_not_known())),
        ServiceResponseError("reset", error=ConnectionResetError()),
        ConnectionRefusedError(),
        TimeoutError(),
        ConflictsPersist("changed"),
        WriteFailure(Cause.REJECTED, "InvalidHeaderValue", 400),
    ]
)


@given(storage_errors | bugs)
def test_is_storage_error_is_exactly_what_classify_turns_into_a_cause(error: Exception) -> None:
    """What the storage calls catch (STORAGE_ERRORS, is_storage_error) and what classify turns into a
    cause are the same set: nothing caught is re-raised, nothing classified escapes the catch."""
    assert is_storage_error(error) == isinstance(error, STORAGE_ERRORS)
    if is_storage_error(error):
        assert isinstance(classify(error).cause, Cause)
    else:
        with pytest.raises(type(error)) as raised:
            classify(error)
        assert raised.value is error
