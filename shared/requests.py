"""Counting storage requests: what each batch costs, as an Azure SDK `raw_request_hook`."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any
from urllib.parse import urlparse


class RequestCounter:
    """Counts requests by label: the first label whose key appears in `host:port/path`, else the
    host and port. Pass it as `Runtime(request_hook=...)` (the SDKs' `raw_request_hook`)."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self._labels = labels or {}
        self._lock = threading.Lock()

    def __call__(self, request: Any) -> None:
        url = urlparse(request.http_request.url)
        where = url.netloc + url.path
        label = next((name for key, name in self._labels.items() if key in where), url.netloc)
        with self._lock:
            self.counts[label] += 1

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
