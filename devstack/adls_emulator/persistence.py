"""On-disk persistence for the store: data files plus a JSON index.

Layout under ``location``::

    index.json          every account, filesystem and path with its properties
    blobs/<id>          the committed bytes of one file

Robustness rules, so a crash at any moment leaves a loadable state:

* committed bytes are appended to a file's blob *before* the index that
  counts them is written; on load a blob is cut to the size the index records;
* an overwritten or deleted file's blob is only removed after an index that
  no longer references it has been written;
* the index is written to a temporary file and renamed over the old one.

Index writes are coalesced by a background thread (a burst of commits costs
one write); :meth:`DiskPersistence.close` writes synchronously, so a clean stop
never loses anything. Uncommitted (appended but not flushed) data is kept in
memory only, like a server restart discarding it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

INDEX_VERSION = 1
_COALESCE_SECONDS = 0.05


class Persistence:
    """No-op persistence for the in-memory store."""

    enabled = False

    def new_blob(self) -> str | None:
        return None

    def write_blob(self, blob_id: str | None, data: bytes | bytearray) -> None:
        return None

    def append_blob(self, blob_id: str | None, data: bytes | bytearray) -> None:
        return None

    def retire_blob(self, blob_id: str | None) -> None:
        return None

    def mark_dirty(self) -> None:
        return None

    def load(self) -> dict[str, Any] | None:
        return None

    def read_blob(self, blob_id: str, size: int) -> bytearray:
        return bytearray()

    def attach(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        return None

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None


class DiskPersistence(Persistence):
    """Persistence in a folder (see module docstring for the guarantees)."""

    enabled = True

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.root = Path(location)
        self.blobs = self.root / "blobs"
        self.index = self.root / "index.json"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._cond = threading.Condition()
        self._dirty = False
        self._closing = False
        self._retired: list[str] = []
        self._snapshot: Callable[[], dict[str, Any]] | None = None
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()

    # -- blobs -----------------------------------------------------------
    def new_blob(self) -> str:
        blob_id = uuid.uuid4().hex
        (self.blobs / blob_id).touch()
        return blob_id

    def write_blob(self, blob_id: str | None, data: bytes | bytearray) -> None:
        if blob_id is not None:
            with open(self.blobs / blob_id, "wb") as handle:
                handle.write(data)

    def append_blob(self, blob_id: str | None, data: bytes | bytearray) -> None:
        if blob_id is not None and data:
            with open(self.blobs / blob_id, "ab") as handle:
                handle.write(data)

    def read_blob(self, blob_id: str, size: int) -> bytearray:
        """Read a blob, cutting off bytes a crash appended after the last index write."""
        try:
            with open(self.blobs / blob_id, "r+b") as handle:
                data = bytearray(handle.read(size))
                handle.truncate(len(data))
                return data
        except FileNotFoundError:
            return bytearray()

    def retire_blob(self, blob_id: str | None) -> None:
        if blob_id is not None:
            with self._cond:
                self._retired.append(blob_id)
            self.mark_dirty()

    # -- index -----------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        if not self.index.exists():
            return None
        with open(self.index, encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
        if data.get("version") != INDEX_VERSION:
            raise ValueError(f"{self.index}: unsupported index version {data.get('version')!r}")
        return data

    def remove_unreferenced(self, referenced: set[str]) -> None:
        """Delete blobs no index references (left over from a crash)."""
        for entry in self.blobs.iterdir():
            if entry.name not in referenced and not entry.name.startswith("."):
                entry.unlink(missing_ok=True)

    def attach(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Set the callable that returns the state to write."""
        self._snapshot = snapshot

    def start(self) -> None:
        """Start the background index writer (again, after a close)."""
        if self._thread is not None:
            return
        with self._cond:
            self._closing = False
        self._thread = threading.Thread(target=self._run, name="adls-emulator-persist", daemon=True)
        self._thread.start()

    def mark_dirty(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
            # Let a burst of commits pile up into one write.
            with self._cond:
                self._cond.wait(_COALESCE_SECONDS)
            self.flush()

    def flush(self) -> None:
        """Write the index now, then delete blobs it no longer references."""
        if self._snapshot is None:
            return
        with self._write_lock:
            with self._cond:
                self._dirty = False
                retired, self._retired = self._retired, []
            state = self._snapshot()
            state["version"] = INDEX_VERSION
            tmp = self.index.with_name(f".index.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(state, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.index)
            for blob_id in retired:
                (self.blobs / blob_id).unlink(missing_ok=True)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
