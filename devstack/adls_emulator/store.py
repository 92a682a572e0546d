"""The hierarchical-namespace model: filesystems, paths, data, ETags.

One lock guards the whole store, so every operation -- including its
conditional-header check -- is atomic, like a single request on the real
service. Methods raise :class:`~.errors.StorageError` with the dfs error code;
the Blob layer translates codes it words differently.

Semantics follow the ADLS Gen2 REST reference:

* directories are real entries; creating a path creates missing parents;
* ``append`` stores uncommitted data at a position, ``flush`` commits data
  contiguous from the committed length up to the flush position;
* every committed change (create, flush, metadata/properties change) gets a
  new ETag and Last-Modified; appends alone change neither; a rename keeps the
  source's ETag (as the service does);
* rename is atomic within the account and overwrites the destination unless a
  destination condition forbids it.

Committed file data lives in a ``bytearray`` (appends extend it in place, no
quadratic copying); with a ``location`` it is also written to disk (see
:mod:`.persistence`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conditions import Conditions
from .errors import error
from .persistence import DiskPersistence, Persistence

# Windows FILETIME epoch offset: creationTime counts 100-nanosecond ticks since
# 1601-01-01. The service's ETags are that clock plus a constant, which is why
# they all start with 0x8D.
_FILETIME_EPOCH_OFFSET = 116444736000000000
_ETAG_OFFSET = 0x8BD000000000000
_FILESYSTEM_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_MAX_PATH_LENGTH = 1024
_MAX_PATH_SEGMENTS = 63 * 4  # generous; the real limit depends on the account

CONTENT_PROPERTIES = (
    "content-type",
    "content-encoding",
    "content-language",
    "content-disposition",
    "cache-control",
    "content-md5",
)


def filetime(epoch_seconds: float) -> int:
    """Epoch seconds as Windows FILETIME ticks (as in listPaths' creationTime)."""
    return int(epoch_seconds * 10_000_000) + _FILETIME_EPOCH_OFFSET


def validate_filesystem_name(name: str) -> None:
    """3-63 chars of lowercase letters, digits and single hyphens, starting with a letter or digit."""
    if not _FILESYSTEM_NAME.match(name):
        raise error("InvalidResourceName")


def split_path(path: str) -> list[str]:
    """Normalise a path: no empty segments, no leading/trailing slashes."""
    return [segment for segment in path.split("/") if segment]


def validate_path(path: str) -> str:
    segments = split_path(path)
    normalized = "/".join(segments)
    if not segments or len(normalized) > _MAX_PATH_LENGTH or len(segments) > _MAX_PATH_SEGMENTS:
        raise error("InvalidResourceName")
    if any(segment in (".", "..") for segment in segments):
        raise error("InvalidResourceName")
    return normalized


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


@dataclass
class Node:
    """One path: a file (with data) or a directory."""

    is_dir: bool
    etag: str
    last_modified: float
    created: float
    metadata: dict[str, str] = field(default_factory=dict)
    props: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    uncommitted: dict[int, bytes] = field(default_factory=dict)
    blob_id: str | None = None
    owner: str = "$superuser"
    group: str = "$superuser"
    permissions: str = ""
    acl: str | None = None

    def __post_init__(self) -> None:
        if not self.permissions:
            self.permissions = "rwxr-x---" if self.is_dir else "rw-r-----"


@dataclass(frozen=True)
class PathInfo:
    """An immutable snapshot of a path, safe to render outside the lock."""

    name: str
    is_dir: bool
    etag: str
    last_modified: float
    created: float
    size: int
    metadata: dict[str, str]
    props: dict[str, str]
    owner: str
    group: str
    permissions: str
    acl: str | None


@dataclass
class Filesystem:
    name: str
    etag: str
    last_modified: float
    created: float
    metadata: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    # directory path ("" for the root) -> names of its direct children
    children: dict[str, set[str]] = field(default_factory=lambda: {"": set()})


@dataclass(frozen=True)
class FilesystemInfo:
    name: str
    etag: str
    last_modified: float
    metadata: dict[str, str]


class Store:
    """All accounts' filesystems and paths. Thread-safe."""

    def __init__(self, location: str | Path | None = None) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, dict[str, Filesystem]] = {}
        self._last_tick = 0
        self.persistence: Persistence = DiskPersistence(location) if location is not None else Persistence()
        self._load()
        self.persistence.attach(self._snapshot_state)

    def open(self) -> None:
        """Start writing changes to disk in the background (when persistent)."""
        self.persistence.start()

    def close(self) -> None:
        """Write everything to disk (when persistent) and stop the writer thread."""
        self.persistence.close()

    # -- helpers ---------------------------------------------------------
    def _new_etag(self) -> str:
        """A unique, increasing ETag shaped like the service's (e.g. 0x8DA815649F3979F)."""
        tick = max(filetime(time.time()), self._last_tick + 1)
        self._last_tick = tick
        return f"0x{tick + _ETAG_OFFSET:X}"

    def _fs(self, account: str, name: str) -> Filesystem:
        fs = self._accounts.get(account, {}).get(name)
        if fs is None:
            raise error("FilesystemNotFound")
        return fs

    @staticmethod
    def _info(name: str, node: Node) -> PathInfo:
        return PathInfo(
            name=name,
            is_dir=node.is_dir,
            etag=node.etag,
            last_modified=node.last_modified,
            created=node.created,
            size=len(node.data),
            metadata=dict(node.metadata),
            props=dict(node.props),
            owner=node.owner,
            group=node.group,
            permissions=node.permissions,
            acl=node.acl,
        )

    @staticmethod
    def _fs_info(fs: Filesystem) -> FilesystemInfo:
        return FilesystemInfo(fs.name, fs.etag, fs.last_modified, dict(fs.metadata))

    def _touch(self, node: Node) -> None:
        node.etag = self._new_etag()
        node.last_modified = time.time()

    def _attach(self, fs: Filesystem, path: str, node: Node) -> None:
        fs.nodes[path] = node
        fs.children.setdefault(parent_of(path), set()).add(path)
        if node.is_dir:
            fs.children.setdefault(path, set())

    def _detach(self, fs: Filesystem, path: str) -> Node:
        node = fs.nodes.pop(path)
        siblings = fs.children.get(parent_of(path))
        if siblings is not None:
            siblings.discard(path)
        fs.children.pop(path, None)
        return node

    def _descendants(self, fs: Filesystem, path: str) -> Iterator[str]:
        """Depth-first, name-ordered walk below ``path`` (the order listPaths uses)."""
        for child in sorted(fs.children.get(path, ())):
            yield child
            if fs.nodes[child].is_dir:
                yield from self._descendants(fs, child)

    def _ensure_parents(self, fs: Filesystem, path: str) -> None:
        """Create missing ancestor directories; a file in the way is a PathConflict."""
        segments = path.split("/")[:-1]
        for depth in range(1, len(segments) + 1):
            ancestor = "/".join(segments[:depth])
            existing = fs.nodes.get(ancestor)
            if existing is None:
                now = time.time()
                directory = Node(is_dir=True, etag=self._new_etag(), last_modified=now, created=now)
                self._attach(fs, ancestor, directory)
            elif not existing.is_dir:
                raise error("PathConflict")

    def _retire_data(self, node: Node) -> None:
        if node.blob_id is not None:
            self.persistence.retire_blob(node.blob_id)
            node.blob_id = None

    def _retire_tree(self, fs: Filesystem, path: str) -> None:
        for descendant in list(self._descendants(fs, path)):
            self._retire_data(fs.nodes[descendant])
        self._retire_data(fs.nodes[path])

    # -- filesystems -----------------------------------------------------
    def list_filesystems(self, account: str, prefix: str = "") -> list[FilesystemInfo]:
        with self._lock:
            return [
                self._fs_info(fs)
                for name, fs in sorted(self._accounts.get(account, {}).items())
                if name.startswith(prefix)
            ]

    def create_filesystem(self, account: str, name: str, metadata: dict[str, str]) -> FilesystemInfo:
        validate_filesystem_name(name)
        with self._lock:
            filesystems = self._accounts.setdefault(account, {})
            if name in filesystems:
                raise error("FilesystemAlreadyExists")
            now = time.time()
            fs = Filesystem(
                name=name, etag=self._new_etag(), last_modified=now, created=now, metadata=dict(metadata)
            )
            filesystems[name] = fs
            self.persistence.mark_dirty()
            return self._fs_info(fs)

    def get_filesystem(self, account: str, name: str) -> FilesystemInfo:
        with self._lock:
            return self._fs_info(self._fs(account, name))

    def set_filesystem_metadata(
        self, account: str, name: str, metadata: dict[str, str], conditions: Conditions
    ) -> FilesystemInfo:
        with self._lock:
            fs = self._fs(account, name)
            conditions.check(fs.etag, fs.last_modified)
            fs.metadata = dict(metadata)
            fs.etag = self._new_etag()
            fs.last_modified = time.time()
            self.persistence.mark_dirty()
            return self._fs_info(fs)

    def delete_filesystem(self, account: str, name: str, conditions: Conditions) -> None:
        with self._lock:
            fs = self._fs(account, name)
            conditions.check(fs.etag, fs.last_modified)
            for node in fs.nodes.values():
                self._retire_data(node)
            del self._accounts[account][name]
            self.persistence.mark_dirty()

    def drop_account(self, account: str) -> None:
        """Forget an account's data (the account was deleted)."""
        with self._lock:
            for fs in self._accounts.pop(account, {}).values():
                for node in fs.nodes.values():
                    self._retire_data(node)
            self.persistence.mark_dirty()

    # -- paths: create / rename / delete ---------------------------------
    def create_path(
        self,
        account: str,
        filesystem: str,
        path: str,
        *,
        is_dir: bool,
        metadata: dict[str, str],
        props: dict[str, str],
        conditions: Conditions,
        owner: str | None = None,
        group: str | None = None,
        permissions: str | None = None,
        acl: str | None = None,
        data: bytes | None = None,
    ) -> PathInfo:
        """Path - Create (file or directory); also Put Blob when ``data`` is given.

        An existing file is replaced (truncated); an existing directory keeps its
        children. A different resource type in the way is a PathConflict.
        """
        path = validate_path(path)
        with self._lock:
            fs = self._fs(account, filesystem)
            existing = fs.nodes.get(path)
            conditions.check(
                None if existing is None else existing.etag,
                None if existing is None else existing.last_modified,
                create=True,
            )
            if existing is not None and existing.is_dir != is_dir:
                raise error("PathConflict")
            self._ensure_parents(fs, path)
            now = time.time()
            if existing is not None and is_dir:
                node = existing
                node.metadata = dict(metadata)
                node.props.update(props)
                self._touch(node)
            else:
                if existing is not None:
                    self._retire_data(existing)
                node = Node(
                    is_dir=is_dir,
                    etag=self._new_etag(),
                    last_modified=now,
                    created=now,
                    metadata=dict(metadata),
                    props=dict(props),
                )
                if data:
                    node.data = bytearray(data)
                    node.blob_id = self.persistence.new_blob()
                    self.persistence.write_blob(node.blob_id, node.data)
                self._attach(fs, path, node)
            if owner:
                node.owner = owner
            if group:
                node.group = group
            if permissions:
                node.permissions = permissions
            if acl:
                node.acl = acl
            self.persistence.mark_dirty()
            return self._info(path, node)

    def rename_path(
        self,
        account: str,
        filesystem: str,
        path: str,
        *,
        source_filesystem: str,
        source_path: str,
        conditions: Conditions,
        source_conditions: Conditions,
    ) -> PathInfo:
        """Path - Create with x-ms-rename-source: atomic move, overwriting the destination."""
        path = validate_path(path)
        with self._lock:
            fs = self._fs(account, filesystem)
            source_fs = self._accounts.get(account, {}).get(source_filesystem)
            source_path = "/".join(split_path(source_path))
            source = None if source_fs is None else source_fs.nodes.get(source_path)
            if source_fs is None or source is None:
                raise error("SourcePathNotFound")
            source_conditions.check(source.etag, source.last_modified, source=True)
            existing = fs.nodes.get(path)
            conditions.check(
                None if existing is None else existing.etag,
                None if existing is None else existing.last_modified,
                create=True,
            )
            if source_fs is fs and path == source_path:
                return self._info(path, source)
            if source.is_dir and source_fs is fs and path.startswith(source_path + "/"):
                raise error("InvalidRenameSourcePath")
            parent = parent_of(path)
            if parent and (parent not in fs.nodes or not fs.nodes[parent].is_dir):
                raise error("RenameDestinationParentPathNotFound")
            if existing is not None:
                if existing.is_dir != source.is_dir:
                    raise error("InvalidSourceOrDestinationResourceType")
                if existing.is_dir and fs.children.get(path):
                    raise error("DirectoryNotEmpty", "The destination directory is not empty.")
                self._retire_data(existing)
                self._detach(fs, path)
            moved = [source_path]
            if source.is_dir:
                moved += self._descendants(source_fs, source_path)
            nodes = [(old, self._detach(source_fs, old)) for old in moved]
            for old, node in nodes:
                self._attach(fs, path + old[len(source_path) :], node)
            self.persistence.mark_dirty()
            return self._info(path, source)

    def delete_path(
        self,
        account: str,
        filesystem: str,
        path: str,
        *,
        recursive: bool,
        conditions: Conditions,
        blob_api: bool = False,
    ) -> PathInfo:
        path = "/".join(split_path(path))
        with self._lock:
            fs = self._fs(account, filesystem)
            node = fs.nodes.get(path)
            if node is None:
                raise error("PathNotFound")
            conditions.check(node.etag, node.last_modified)
            if node.is_dir and fs.children.get(path) and not recursive:
                raise error("DirectoryIsNotEmpty") if blob_api else error("DirectoryNotEmpty")
            info = self._info(path, node)
            self._retire_tree(fs, path)
            for descendant in list(self._descendants(fs, path)):
                fs.nodes.pop(descendant, None)
                fs.children.pop(descendant, None)
            self._detach(fs, path)
            self.persistence.mark_dirty()
            return info

    # -- paths: data -----------------------------------------------------
    def _file(self, account: str, filesystem: str, path: str) -> Node:
        fs = self._fs(account, filesystem)
        node = fs.nodes.get("/".join(split_path(path)))
        if node is None:
            raise error("PathNotFound")
        return node

    def append(
        self,
        account: str,
        filesystem: str,
        path: str,
        *,
        position: int,
        data: bytes,
        flush: bool,
        content_md5: str | None = None,
    ) -> PathInfo:
        """Path - Update action=append (optionally with flush=true)."""
        if content_md5 is not None:
            actual = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")
            if actual != content_md5:
                raise error("Md5Mismatch")
        with self._lock:
            node = self._file(account, filesystem, path)
            if node.is_dir:
                raise error("PathConflict")
            committed = len(node.data)
            if position < committed or (flush and position != committed):
                raise error("InvalidFlushPosition")
            if flush:
                node.uncommitted.clear()
                self._commit(node, [data])
            elif data:
                node.uncommitted[position] = bytes(data)
            return self._info(path, node)

    def _commit(self, node: Node, chunks: list[bytes]) -> None:
        """Extend the committed data in place (one copy per chunk) and give it a new ETag."""
        for chunk in chunks:
            if not chunk:
                continue
            if node.blob_id is None and self.persistence.enabled:
                node.blob_id = self.persistence.new_blob()
            node.data += chunk
            self.persistence.append_blob(node.blob_id, chunk)
        node.props.pop("content-md5", None)
        self._touch(node)
        self.persistence.mark_dirty()

    def flush(
        self,
        account: str,
        filesystem: str,
        path: str,
        *,
        position: int,
        retain_uncommitted: bool,
        conditions: Conditions,
        props: dict[str, str],
    ) -> PathInfo:
        """Path - Update action=flush: commit appended data up to ``position``.

        The data between the committed length and ``position`` must have been
        appended contiguously and end exactly at ``position`` (a flush cannot
        split an appended block), else 400 InvalidFlushPosition.
        """
        with self._lock:
            node = self._file(account, filesystem, path)
            if node.is_dir:
                raise error("PathConflict")
            conditions.check(node.etag, node.last_modified)
            cursor = len(node.data)
            if position < cursor:
                raise error("InvalidFlushPosition")
            chunks: list[bytes] = []
            used: list[int] = []
            while cursor < position:
                chunk = node.uncommitted.get(cursor)
                if chunk is None or cursor + len(chunk) > position:
                    raise error("InvalidFlushPosition")
                chunks.append(chunk)
                used.append(cursor)
                cursor += len(chunk)
            if retain_uncommitted:
                for offset in used:
                    del node.uncommitted[offset]
            else:
                node.uncommitted.clear()
            self._commit(node, chunks)
            node.props.update(props)
            return self._info(path, node)

    def read(
        self, account: str, filesystem: str, path: str, start: int = 0, end: int | None = None
    ) -> tuple[PathInfo, bytes]:
        """Snapshot and bytes [start, end) of a path, copied under the lock."""
        with self._lock:
            node = self._file(account, filesystem, path)
            stop = len(node.data) if end is None else min(end, len(node.data))
            with memoryview(node.data) as view:
                return self._info(path, node), bytes(view[start:stop])

    def get_path(self, account: str, filesystem: str, path: str) -> PathInfo:
        with self._lock:
            return self._info(path, self._file(account, filesystem, path))

    def find_path(self, account: str, filesystem: str, path: str) -> PathInfo | None:
        """Like get_path but None for a missing path (the filesystem must exist)."""
        with self._lock:
            fs = self._fs(account, filesystem)
            normalized = "/".join(split_path(path))
            node = fs.nodes.get(normalized)
            return None if node is None else self._info(normalized, node)

    def set_metadata(
        self, account: str, filesystem: str, path: str, metadata: dict[str, str], conditions: Conditions
    ) -> PathInfo:
        """Replace user metadata (= dfs properties); a committed change with a new ETag."""
        with self._lock:
            node = self._file(account, filesystem, path)
            conditions.check(node.etag, node.last_modified)
            node.metadata = dict(metadata)
            self._touch(node)
            self.persistence.mark_dirty()
            return self._info(path, node)

    def set_properties(
        self,
        account: str,
        filesystem: str,
        path: str,
        *,
        conditions: Conditions,
        props: dict[str, str] | None = None,
        replace_props: bool = False,
        metadata: dict[str, str] | None = None,
        owner: str | None = None,
        group: str | None = None,
        permissions: str | None = None,
        acl: str | None = None,
    ) -> PathInfo:
        """Set content properties, metadata or access control.

        Serves dfs setProperties/setAccessControl and Blob Set Blob Properties.
        """
        with self._lock:
            node = self._file(account, filesystem, path)
            conditions.check(node.etag, node.last_modified)
            if props is not None:
                if replace_props:
                    node.props = dict(props)
                else:
                    node.props.update(props)
            if metadata is not None:
                node.metadata = dict(metadata)
            if owner:
                node.owner = owner
            if group:
                node.group = group
            if permissions:
                node.permissions = permissions
            if acl:
                node.acl = acl
            self._touch(node)
            self.persistence.mark_dirty()
            return self._info(path, node)

    def list_paths(self, account: str, filesystem: str, directory: str, recursive: bool) -> list[PathInfo]:
        """Path - List order: depth-first, children sorted by name."""
        with self._lock:
            fs = self._fs(account, filesystem)
            directory = "/".join(split_path(directory))
            if directory:
                node = fs.nodes.get(directory)
                if node is None:
                    raise error("PathNotFound")
                if not node.is_dir:
                    return [self._info(directory, node)]
            if recursive:
                names = list(self._descendants(fs, directory))
            else:
                names = sorted(fs.children.get(directory, ()))
            return [self._info(name, fs.nodes[name]) for name in names]

    # -- persistence -----------------------------------------------------
    def _snapshot_state(self) -> dict[str, Any]:
        with self._lock:
            accounts: dict[str, Any] = {}
            for account, filesystems in self._accounts.items():
                accounts[account] = {
                    name: {
                        "etag": fs.etag,
                        "last_modified": fs.last_modified,
                        "created": fs.created,
                        "metadata": fs.metadata,
                        "paths": {
                            path: {
                                "is_dir": node.is_dir,
                                "etag": node.etag,
                                "last_modified": node.last_modified,
                                "created": node.created,
                                "metadata": dict(node.metadata),
                                "props": dict(node.props),
                                "blob": node.blob_id,
                                "size": len(node.data),
                                "owner": node.owner,
                                "group": node.group,
                                "permissions": node.permissions,
                                "acl": node.acl,
                            }
                            for path, node in fs.nodes.items()
                        },
                    }
                    for name, fs in filesystems.items()
                }
            return {"accounts": accounts, "last_tick": self._last_tick}

    def _load(self) -> None:
        state = self.persistence.load()
        if state is None:
            if isinstance(self.persistence, DiskPersistence):
                self.persistence.remove_unreferenced(set())
            return
        referenced: set[str] = set()
        self._last_tick = int(state.get("last_tick", 0))
        for account, filesystems in state.get("accounts", {}).items():
            for name, raw_fs in filesystems.items():
                fs = Filesystem(
                    name=name,
                    etag=raw_fs["etag"],
                    last_modified=raw_fs["last_modified"],
                    created=raw_fs["created"],
                    metadata=dict(raw_fs.get("metadata", {})),
                )
                # Parents before children so the children index is complete.
                for path in sorted(raw_fs.get("paths", {}), key=lambda p: p.count("/")):
                    raw = raw_fs["paths"][path]
                    node = Node(
                        is_dir=raw["is_dir"],
                        etag=raw["etag"],
                        last_modified=raw["last_modified"],
                        created=raw["created"],
                        metadata=dict(raw.get("metadata", {})),
                        props=dict(raw.get("props", {})),
                        owner=raw.get("owner", "$superuser"),
                        group=raw.get("group", "$superuser"),
                        permissions=raw.get("permissions", ""),
                        acl=raw.get("acl"),
                    )
                    blob_id = raw.get("blob")
                    if blob_id:
                        node.blob_id = blob_id
                        node.data = self.persistence.read_blob(blob_id, int(raw.get("size", 0)))
                        referenced.add(blob_id)
                    self._attach(fs, path, node)
                self._accounts.setdefault(account, {})[name] = fs
        if isinstance(self.persistence, DiskPersistence):
            self.persistence.remove_unreferenced(referenced)
