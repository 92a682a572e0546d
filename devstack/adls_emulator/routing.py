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


def classify(req: Request) -> tuple[str, str]:
    """Return ``(api, operation)`` for a request; ``operation`` is a Fault/RequestRecord name."""
    method = req.method
    comp = req.query.get("comp")
    if not req.filesystem:
        if req.query.get("resource") == "account" and method == "GET":
            return "dfs", "listFilesystems"
        if comp == "list" and method == "GET":
            return "blob", "listFilesystems"
        if comp == "userdelegationkey" and method == "POST" and req.query.get("restype") == "service":
            return "blob", "userDelegationKey"
        return ("dfs" if _is_dfs(req) else "blob"), "unsupported"

    if _is_dfs(req):
        if not req.path:
            if req.query.get("resource") != "filesystem":
                return "dfs", "unsupported"
            return "dfs", {
                "PUT": "createFilesystem",
                "DELETE": "deleteFilesystem",
                "HEAD": "getFilesystemProperties",
                "PATCH": "setFilesystemProperties",
                "GET": "listPaths",
            }.get(method, "unsupported")
        action = (req.query.get("action") or "").lower()
        if method == "PUT":
            return "dfs", "rename" if req.header("x-ms-rename-source") is not None else "create"
        if method == "PATCH":
            return "dfs", _DFS_PATH_ACTIONS.get(action, "unsupported")
        if method == "HEAD":
            return "dfs", _DFS_PATH_ACTIONS.get(action or "getstatus", "unsupported")
        if method == "GET":
            return "dfs", "read"
        if method == "DELETE":
            return "dfs", "delete"
        if method == "POST":
            return "dfs", "lease"
        return "dfs", "unsupported"

    if not req.path:
        if req.query.get("restype") != "container":
            return "blob", "unsupported"
        if method == "PUT":
            if comp == "metadata":
                return "blob", "setFilesystemProperties"
            if comp == "lease":
                return "blob", "lease"
            return "blob", "createFilesystem" if comp is None else "unsupported"
        if method == "DELETE":
            return "blob", "deleteFilesystem"
        if method in ("GET", "HEAD"):
            if comp is None or comp == "metadata":
                return "blob", "getFilesystemProperties"
            return "blob", "unsupported"
        return "blob", "unsupported"
    if method == "HEAD":
        return "blob", "getProperties"
    if method == "GET":
        if comp is None:
            return "blob", "read"
        if comp == "metadata":
            return "blob", "getProperties"
        return "blob", "unsupported"
    if method == "PUT":
        if comp == "metadata":
            return "blob", "setMetadata"
        if comp == "properties":
            return "blob", "setProperties"
        if comp == "lease":
            return "blob", "lease"
        return "blob", "upload" if comp is None else "unsupported"
    if method == "DELETE":
        return "blob", "delete"
    return "blob", "unsupported"
