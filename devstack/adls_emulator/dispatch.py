"""The request flow behind the HTTP front end: what the emulator answers to one request.

control endpoint? -> classify (dfs or Blob, logical operation) -> faults (latency, error, dropped
connection) -> account lookup -> authentication and authorization (SharedKey, bearer token and roles,
or SAS: :mod:`.security`) -> operation -> request log -> the reply.

Error bodies follow each endpoint's format (:func:`.protocol.render_error`): dfs answers JSON
``{"error":{"code":..,"message":..}}``, Blob answers XML ``<Error>``; both send ``x-ms-error-code``.
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import Protocol

from . import blob, control, dfs
from .errors import StorageError, error, for_blob
from .faults import FaultRegistry, RequestLog, RequestRecord
from .protocol import Request, Response, render_error
from .routing import classify
from .security import Authority, authorize, user_delegation_key
from .server import Reply
from .store import Store


class Emulated(Authority, control.Controlled, Protocol):
    """What the request flow uses of an emulator: its accounts and identities (:mod:`.security`), its
    control endpoints (:mod:`.control`), its faults, request log and store."""

    faults: FaultRegistry
    log: RequestLog
    store: Store


def is_control(req: Request) -> bool:
    return req.raw_path == "/__emulator" or req.raw_path.startswith("/__emulator/")


def respond(emulator: Emulated, req: Request, request_id: str, secure: bool) -> Reply | None:
    """The reply to one request (None: drop the connection, as a fault asks)."""
    if is_control(req):
        return Reply(control.handle(emulator, req.method, req.raw_path, req.body), api="control")
    req.api, req.operation = classify(req)
    outcome = emulator.faults.match(req.operation, req.account, req.resource_path)
    if outcome.latency > 0:
        time.sleep(outcome.latency)
    fault = outcome.fault
    if fault is not None and fault.drop_connection:
        emulator.log.append(RequestRecord(req.method, req.operation, req.account, req.resource_path, 0))
        return None
    if fault is not None and fault.status is not None:
        response = render_error(StorageError(fault.status, fault.code, fault.message), req.api, request_id)
    else:
        response = _execute(emulator, req, request_id, secure)
    # Log before answering: once a client has its response, the record is visible.
    record = RequestRecord(req.method, req.operation, req.account, req.resource_path, response.status)
    emulator.log.append(record)
    return Reply(response, req.api, req.version, req.header("x-ms-client-request-id"))


def _execute(emulator: Emulated, req: Request, request_id: str, secure: bool) -> Response:
    try:
        if not req.account:
            raise error("InvalidUri")
        caller = authorize(emulator, req, secure=secure)
        if req.operation == "userDelegationKey":
            return user_delegation_key(emulator, req, caller)
        if req.api == "dfs":
            return dfs.handle(emulator.store, req)
        return blob.handle(emulator.store, req, req.header("host") or "127.0.0.1")
    except StorageError as err:
        return render_error(for_blob(err) if req.api == "blob" else err, req.api, request_id)
    except Exception:  # noqa: BLE001 - a bug in the emulator: answer as the service's 500, keep serving
        traceback.print_exc(file=sys.stderr)
        internal = StorageError(
            500, "InternalError", "Server encountered an internal error. Please retry the request."
        )
        return render_error(internal, req.api, request_id)
