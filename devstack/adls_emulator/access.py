"""Who may do what on an account: its Entra tenant, shared-key access, and Azure role assignments.

Roles are the built-in Storage Blob Data roles, with the actions and data actions Azure gives them
(https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles/storage):

| role | actions | data actions |
| --- | --- | --- |
| Storage Blob Data Reader | containers/read, generateUserDelegationKey | blobs/read |
| Storage Blob Data Contributor | containers/read, write, delete, generateUserDelegationKey | blobs/read, |
| | | write, delete, add, move |
| Storage Blob Data Owner | containers/*, generateUserDelegationKey | blobs/* (also ACLs, ownership) |
| Storage Blob Delegator | generateUserDelegationKey | none |

An assignment names a principal (the `oid` of the token: a service principal's or managed identity's
object id), a role and a scope: the account, or one filesystem (container) of it. An assignment at the
account covers every filesystem; account-level operations (listing filesystems, Get User Delegation
Key) need one at the account. Changes take effect on the next request (Azure takes up to a few
minutes: https://learn.microsoft.com/en-us/azure/role-based-access-control/troubleshooting#symptom---role-assignment-changes-are-not-being-detected).

`allow_shared_key_access=False` is the account property `allowSharedKeyAccess`: requests signed with
the account key, and service or account SAS signed with it, are refused with 403
KeyBasedAuthenticationNotPermitted; Entra ID and user delegation SAS still work
(https://learn.microsoft.com/en-us/azure/storage/common/shared-key-authorization-prevent).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READER = "Storage Blob Data Reader"
CONTRIBUTOR = "Storage Blob Data Contributor"
OWNER = "Storage Blob Data Owner"
DELEGATOR = "Storage Blob Delegator"

# Role definition ids (the same in every tenant), so assignments can name a role either way.
ROLE_IDS = {
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": READER,
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": CONTRIBUTOR,
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": OWNER,
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": DELEGATOR,
}

# What each role may do, in the short names of the Microsoft.Storage actions below.
_READ = frozenset({"containers/read", "generateUserDelegationKey", "blobs/read"})
_WRITE = _READ | {
    "containers/write",
    "containers/delete",
    "blobs/write",
    "blobs/delete",
    "blobs/add",
    "blobs/move",
}
_ROLE_ACTIONS: dict[str, frozenset[str]] = {
    READER: _READ,
    CONTRIBUTOR: _WRITE,
    OWNER: _WRITE | {"blobs/modifyPermissions", "blobs/manageOwnership"},
    DELEGATOR: frozenset({"generateUserDelegationKey"}),
}


@dataclass(frozen=True)
class Need:
    """What an operation needs: the RBAC action, whether only an account-scope role grants it, and the
    SAS permissions any one of which allows it (empty: a service SAS cannot authorize it)."""

    action: str
    account_scope: bool = False
    sas: str = ""


# Per operation of `routing.classify`. SAS letters: "Permissions for a directory, container, or blob"
# (https://learn.microsoft.com/en-us/rest/api/storageservices/create-service-sas#permissions-for-a-directory-container-or-blob).
# A container SAS reads its blobs, not the container's own properties: Azure answers Get Container
# Properties with it 403 AuthorizationFailure, whatever its permissions (Azure/azure-sdk-for-net#17142,
# Azure/azure-sdk-for-python#18012 and #24227, all with `sr=c` SAS).
NEEDS: dict[str, Need] = {
    "listFilesystems": Need("containers/read", account_scope=True),
    "createFilesystem": Need("containers/write"),
    "deleteFilesystem": Need("containers/delete"),
    "getFilesystemProperties": Need("containers/read"),
    "setFilesystemProperties": Need("containers/write", sas="w"),
    "listPaths": Need("blobs/read", sas="l"),
    "create": Need("blobs/write", sas="cw"),
    "upload": Need("blobs/write", sas="cw"),
    "rename": Need("blobs/move", sas="m"),
    "append": Need("blobs/write", sas="aw"),
    "appendFlush": Need("blobs/write", sas="w"),
    "flush": Need("blobs/write", sas="w"),
    "setProperties": Need("blobs/write", sas="w"),
    "setMetadata": Need("blobs/write", sas="w"),
    "lease": Need("blobs/write", sas="w"),
    "setAccessControl": Need("blobs/modifyPermissions", sas="op"),
    "getAccessControl": Need("blobs/read", sas="r"),
    "getProperties": Need("blobs/read", sas="r"),
    "read": Need("blobs/read", sas="r"),
    "delete": Need("blobs/delete", sas="d"),
    "userDelegationKey": Need("generateUserDelegationKey", account_scope=True),
}


def role_name(role: str) -> str:
    """A role by name or definition id; ValueError for anything else."""
    if role in _ROLE_ACTIONS:
        return role
    if role.lower() in ROLE_IDS:
        return ROLE_IDS[role.lower()]
    raise ValueError(f"unknown role; one of: {', '.join(_ROLE_ACTIONS)}")


@dataclass(frozen=True)
class Assignment:
    principal: str
    role: str
    filesystem: str | None  # None: the whole account

    def to_json(self) -> dict[str, Any]:
        return {"principalId": self.principal, "role": self.role, "filesystem": self.filesystem}


@dataclass
class AccountAccess:
    """One account's identity settings."""

    tenant: str | None = None  # the Entra tenant whose tokens the account takes; None: no Entra ID
    allow_shared_key_access: bool = True
    assignments: list[Assignment] = field(default_factory=list)
    # Signs user delegation keys; a new secret revokes every key handed out (Revoke User Delegation Keys).
    delegation_secret: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "allowSharedKeyAccess": self.allow_shared_key_access,
            "roleAssignments": [a.to_json() for a in self.assignments],
        }


def _principal(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("principalId must be a GUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("principalId must be a GUID") from None


class AccessRegistry:
    """The identity settings of every account; thread-safe, saved beside the store when it persists."""

    def __init__(self, location: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, AccountAccess] = {}
        self._file = None if location is None else location / "access.json"
        self._load()

    def get(self, account: str) -> AccountAccess:
        """A snapshot of the account's settings (defaults for an account never configured)."""
        with self._lock:
            access = self._accounts.get(account)
            if access is None:
                return AccountAccess()
            return AccountAccess(
                access.tenant,
                access.allow_shared_key_access,
                list(access.assignments),
                access.delegation_secret,
            )

    def configure(
        self, account: str, *, tenant: str | None = None, allow_shared_key_access: bool | None = None
    ) -> None:
        with self._lock:
            access = self._accounts.setdefault(account, AccountAccess())
            if tenant is not None:
                access.tenant = str(uuid.UUID(tenant))
            if allow_shared_key_access is not None:
                access.allow_shared_key_access = allow_shared_key_access
            self._save()

    def assign(self, account: str, principal: str, role: str, filesystem: str | None = None) -> Assignment:
        """Assign a role at the account (`filesystem=None`) or at one filesystem; idempotent."""
        assignment = Assignment(_principal(principal), role_name(role), filesystem or None)
        with self._lock:
            access = self._accounts.setdefault(account, AccountAccess())
            if assignment not in access.assignments:
                access.assignments.append(assignment)
            self._save()
        return assignment

    def unassign(
        self, account: str, principal: str, role: str | None = None, filesystem: str | None = None
    ) -> int:
        """Remove the principal's assignments (of `role`, at `filesystem` when given). Returns how many."""
        principal = _principal(principal)
        name = role_name(role) if role is not None else None
        with self._lock:
            access = self._accounts.get(account)
            if access is None:
                return 0
            kept = [
                a
                for a in access.assignments
                if not (
                    a.principal == principal
                    and (name is None or a.role == name)
                    and (filesystem is None or a.filesystem == (filesystem or None))
                )
            ]
            removed = len(access.assignments) - len(kept)
            access.assignments = kept
            self._save()
            return removed

    def revoke_delegation_keys(self, account: str) -> None:
        with self._lock:
            self._accounts.setdefault(account, AccountAccess()).delegation_secret = base64.b64encode(
                secrets.token_bytes(32)
            ).decode()
            self._save()

    def forget(self, account: str) -> None:
        with self._lock:
            self._accounts.pop(account, None)
            self._save()

    def allowed(
        self, account: str, principal: str, action: str, filesystem: str, *, account_scope: bool
    ) -> bool:
        """Whether a role assigned to `principal` grants `action` on `filesystem` of the account."""
        with self._lock:
            access = self._accounts.get(account)
            assignments = list(access.assignments) if access is not None else []
        for assignment in assignments:
            if assignment.principal != principal or action not in _ROLE_ACTIONS[assignment.role]:
                continue
            if assignment.filesystem is None or (not account_scope and assignment.filesystem == filesystem):
                return True
        return False

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {name: access.to_json() for name, access in self._accounts.items()}

    # -- persistence ---------------------------------------------------------------------------------

    def _save(self) -> None:
        if self._file is None:
            return
        data = {
            name: {**access.to_json(), "delegationSecret": access.delegation_secret}
            for name, access in self._accounts.items()
        }
        self._file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._file.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(data, file, indent=2)
        temporary.replace(self._file)

    def _load(self) -> None:
        if self._file is None or not self._file.exists():
            return
        try:
            data: Mapping[str, Any] = json.loads(self._file.read_text())
        except ValueError:
            return
        for name, item in data.items():
            self._accounts[name] = AccountAccess(
                tenant=item.get("tenant"),
                allow_shared_key_access=bool(item.get("allowSharedKeyAccess", True)),
                assignments=[
                    Assignment(a["principalId"], role_name(a["role"]), a.get("filesystem"))
                    for a in item.get("roleAssignments", [])
                ],
                delegation_secret=item.get("delegationSecret") or AccountAccess().delegation_secret,
            )
