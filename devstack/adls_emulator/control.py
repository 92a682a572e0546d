"""Out-of-process control endpoints under ``/__emulator/`` (no auth).

``__emulator`` can never be an account name (account names are lowercase
letters and digits), so these never clash with storage requests.

* ``GET /__emulator/health``                 -> ``{"status": "ok", "accounts": [...]}``
* ``GET /__emulator/requests``               -> request log (JSON list)
* ``DELETE /__emulator/requests``            -> clear the log
* ``GET /__emulator/faults``                 -> active faults ``{"<id>": {...}}``
* ``POST /__emulator/faults``                -> body: Fault fields; answers ``{"id": n}``
* ``DELETE /__emulator/faults``              -> remove all faults
* ``DELETE /__emulator/faults/{id}``         -> remove one fault
* ``PUT /__emulator/accounts/{name}``        -> body ``{"key": "..."}``: add or rotate
* ``DELETE /__emulator/accounts/{name}``     -> remove the account and its data
* ``GET /__emulator/accounts/{name}/identity``  -> ``{"tenant", "allowSharedKeyAccess", "roleAssignments"}``
* ``PATCH /__emulator/accounts/{name}/identity`` -> body ``{"tenant": "<guid>", "allowSharedKeyAccess":
  false}`` (either field): the Entra tenant whose tokens the account takes; shared-key access on or off
* ``POST /__emulator/accounts/{name}/roleAssignments``   -> body ``{"principalId", "role", "filesystem"?}``:
  assign a Storage Blob Data role (name or definition id) at the account, or at one filesystem
* ``DELETE /__emulator/accounts/{name}/roleAssignments`` -> body ``{"principalId", "role"?, "filesystem"?}``:
  remove matching assignments (404 when none matched); in force from the next request
* ``POST /__emulator/accounts/{name}/revokeUserDelegationKeys`` -> every user delegation SAS stops working
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Protocol

from .access import Assignment
from .auth import AccountRegistry
from .faults import Fault, FaultRegistry, RequestRecord
from .protocol import Response


class Controlled(Protocol):
    """What the control endpoints change: accounts and their identities, faults, the request log
    (the public API of :class:`.emulator.AdlsEmulator`)."""

    accounts: AccountRegistry
    faults: FaultRegistry

    @property
    def requests(self) -> list[RequestRecord]: ...
    def reset_requests(self) -> None: ...
    def add_fault(self, fault: Fault) -> int: ...
    def remove_fault(self, fault_id: int) -> bool: ...
    def clear_faults(self) -> None: ...
    def set_account_key(self, account: str, key: str) -> None: ...
    def add_account(self, account: str, key: str) -> None: ...
    def remove_account(self, account: str) -> None: ...
    def set_identity(
        self, account: str, *, tenant: str | None = None, allow_shared_key_access: bool | None = None
    ) -> None: ...
    def assign_role(
        self, account: str, principal: str, role: str, filesystem: str | None = None
    ) -> Assignment: ...
    def remove_role(
        self, account: str, principal: str, role: str | None = None, filesystem: str | None = None
    ) -> int: ...
    def revoke_user_delegation_keys(self, account: str) -> None: ...
    def identity(self, account: str) -> dict[str, Any]: ...


def _json(status: int, payload: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(payload).encode("utf-8"))


def _no_content() -> Response:
    return Response(204)


def _body(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError as exc:
        raise ValueError(f"request body is not JSON: {exc}") from None


def handle(app: Controlled, method: str, raw_path: str, body: bytes) -> Response:
    """The answer of the control endpoint at ``raw_path`` (400 for a bad body, 404 for no endpoint)."""
    parts = [p for p in raw_path.split("/") if p][1:]
    try:
        response = _route(app, method, parts, body)
    except (ValueError, TypeError) as exc:
        return _json(400, {"error": str(exc)})
    return response or _json(404, {"error": f"unknown control endpoint {method} {raw_path}"})


def _route(app: Controlled, method: str, parts: list[str], body: bytes) -> Response | None:
    if parts == ["health"] and method in ("GET", "HEAD"):
        return _json(200, {"status": "ok", "accounts": app.accounts.names()})
    if parts == ["requests"]:
        return _requests(app, method)
    if parts and parts[0] == "faults":
        return _faults(app, method, parts[1:], body)
    if len(parts) == 2 and parts[0] == "accounts":
        return _account(app, method, parts[1], body)
    if len(parts) == 3 and parts[0] == "accounts":
        return _identity(app, method, parts[1], parts[2], body)
    return None


def _requests(app: Controlled, method: str) -> Response | None:
    if method == "GET":
        return _json(200, [asdict(record) for record in app.requests])
    if method == "DELETE":
        app.reset_requests()
        return _no_content()
    return None


def _faults(app: Controlled, method: str, rest: list[str], body: bytes) -> Response | None:
    """``/faults``: list, add or clear them; ``/faults/{id}``: remove one."""
    if not rest and method == "GET":
        return _json(200, {str(i): f.to_json() for i, f in app.faults.snapshot().items()})
    if not rest and method == "POST":
        data = _body(body)
        if not isinstance(data, dict):
            raise ValueError("fault must be a JSON object")
        return _json(201, {"id": app.add_fault(Fault.from_json(data))})
    if not rest and method == "DELETE":
        app.clear_faults()
        return _no_content()
    if len(rest) == 1 and method == "DELETE":
        if app.remove_fault(int(rest[0])):
            return _no_content()
        return _json(404, {"error": f"no fault {rest[0]}"})
    return None


def _account(app: Controlled, method: str, name: str, body: bytes) -> Response | None:
    """``/accounts/{name}``: add or rotate its key (PUT), or remove it with its data (DELETE)."""
    if method == "PUT":
        data = _body(body)
        key = data.get("key") if isinstance(data, dict) else None
        if not isinstance(key, str):
            raise ValueError('body must be {"key": "<base64 account key>"}')
        existed = name in app.accounts.names()
        app.set_account_key(name, key) if existed else app.add_account(name, key)
        return _json(200 if existed else 201, {"account": name})
    if method == "DELETE":
        if name not in app.accounts.names():
            return _json(404, {"error": f"no account {name}"})
        app.remove_account(name)
        return _no_content()
    return None


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _identity(app: Controlled, method: str, account: str, what: str, body: bytes) -> Response:
    """The account's Entra tenant, shared-key switch and role assignments."""
    if account not in app.accounts.names():
        return _json(404, {"error": f"no account {account}"})
    if what == "identity" and method == "GET":
        return _json(200, app.identity(account))
    if what == "revokeUserDelegationKeys" and method == "POST":
        app.revoke_user_delegation_keys(account)
        return _no_content()
    data = _body(body)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    if what == "identity" and method in ("PATCH", "PUT"):
        allow = data.get("allowSharedKeyAccess")
        if allow is not None and not isinstance(allow, bool):
            raise ValueError("allowSharedKeyAccess must be true or false")
        app.set_identity(account, tenant=_optional_str(data, "tenant"), allow_shared_key_access=allow)
        return _json(200, app.identity(account))
    if what == "roleAssignments" and method == "POST":
        principal, role = data.get("principalId"), data.get("role")
        if not isinstance(principal, str) or not isinstance(role, str):
            raise ValueError('body must be {"principalId": "<object id>", "role": "<role>"[, "filesystem"]}')
        assignment = app.assign_role(account, principal, role, _optional_str(data, "filesystem"))
        return _json(201, assignment.to_json())
    if what == "roleAssignments" and method == "DELETE":
        principal = data.get("principalId")
        if not isinstance(principal, str):
            raise ValueError('body must be {"principalId": "<object id>", "role"?: ..., "filesystem"?: ...}')
        removed = app.remove_role(
            account, principal, _optional_str(data, "role"), _optional_str(data, "filesystem")
        )
        return _no_content() if removed else _json(404, {"error": "no matching role assignment"})
    return _json(404, {"error": f"unknown control endpoint {method} {what}"})
