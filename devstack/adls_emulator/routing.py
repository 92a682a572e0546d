"""Tell dfs from Blob requests and name the logical operation.

With path-style local URLs both APIs share one host and port, so the API is
inferred from the request itself: dfs requests carry ``resource=``/``action=``
query parameters, use PATCH, or send ``x-ms-rename-source``; the generated dfs
client also always sends ``Accept: application/json`` while the Blob client
sends ``application/xml`` -- which is what separates a dfs Path - Delete from a
Blob Delete Blob, the one pair that is otherwise identical on the wire.
"""

from __future__ import annotations

from .protocol import Request


def _is_dfs(req: Request) -> bool:
    if "resource" in req.query or "action" in req.query or req.method == "PATCH":
        return True
    if "restype" in req.query or "comp" in req.query:
        return False
    if req.header("x-ms-rename-source") is not None:
        return True
    accept = (req.header("accept") or "").lower()
    return "json" in accept and "xml" not in accept


_DFS_PATH_ACTIONS = {
    "append": "append",
    "flush": "flush",
    "setproperties": "setProperties",
    "setaccesscontrol": "setAccessControl",
    "setaccesscontrolrecursive": "unsupported",
    "getaccesscontrol": "getAccessControl",
    "getstatus": "getProperties",
}


_DFS_FILESYSTEM = {
    "PUT": "createFilesystem",
    "DELETE": "deleteFilesystem",
    "HEAD": "getFilesystemProperties",
    "PATCH": "setFilesystemProperties",
    "GET": "listPaths",
}
_DFS_PATH = {"GET": "read", "DELETE": "delete", "POST": "lease"}
# Blob operations by (method, comp); a method mapped to None takes any comp.
_BLOB_CONTAINER: dict[tuple[str, str | None], str] = {
    ("PUT", None): "createFilesystem",
    ("PUT", "metadata"): "setFilesystemProperties",
    ("PUT", "lease"): "lease",
    ("GET", None): "getFilesystemProperties",
    ("GET", "metadata"): "getFilesystemProperties",
    ("HEAD", None): "getFilesystemProperties",
    ("HEAD", "metadata"): "getFilesystemProperties",
}
_BLOB_CONTAINER_ANY_COMP = {"DELETE": "deleteFilesystem"}
_BLOB_PATH: dict[tuple[str, str | None], str] = {
    ("GET", None): "read",
    ("GET", "metadata"): "getProperties",
    ("PUT", None): "upload",
    ("PUT", "metadata"): "setMetadata",
    ("PUT", "properties"): "setProperties",
    ("PUT", "lease"): "lease",
}
_BLOB_PATH_ANY_COMP = {"HEAD": "getProperties", "DELETE": "delete"}


def classify(req: Request) -> tuple[str, str]:
    """Return ``(api, operation)`` for a request; ``operation`` is a Fault/RequestRecord name."""
    if not req.filesystem:
        return _account_operation(req)
    if _is_dfs(req):
        return "dfs", _dfs_operation(req)
    return "blob", _blob_operation(req)


def _account_operation(req: Request) -> tuple[str, str]:
    method, comp = req.method, req.query.get("comp")
    if req.query.get("resource") == "account" and method == "GET":
        return "dfs", "listFilesystems"
    if comp == "list" and method == "GET":
        return "blob", "listFilesystems"
    if comp == "userdelegationkey" and method == "POST" and req.query.get("restype") == "service":
        return "blob", "userDelegationKey"
    return ("dfs" if _is_dfs(req) else "blob"), "unsupported"


def _dfs_operation(req: Request) -> str:
    method = req.method
    if not req.path:
        if req.query.get("resource") != "filesystem":
            return "unsupported"
        return _DFS_FILESYSTEM.get(method, "unsupported")
    action = (req.query.get("action") or "").lower()
    if method == "PUT":
        return "rename" if req.header("x-ms-rename-source") is not None else "create"
    if method == "PATCH":
        return _DFS_PATH_ACTIONS.get(action, "unsupported")
    if method == "HEAD":
        return _DFS_PATH_ACTIONS.get(action or "getstatus", "unsupported")
    return _DFS_PATH.get(method, "unsupported")


def _blob_operation(req: Request) -> str:
    method, comp = req.method, req.query.get("comp")
    if not req.path:
        if req.query.get("restype") != "container":
            return "unsupported"
        return _BLOB_CONTAINER_ANY_COMP.get(method) or _BLOB_CONTAINER.get((method, comp), "unsupported")
    return _BLOB_PATH_ANY_COMP.get(method) or _BLOB_PATH.get((method, comp), "unsupported")
