"""The exporter's JSON parser is per thread: simdjson refuses to parse while another document lives."""

from __future__ import annotations

import threading
from typing import Any

from shared.pipeline import Exporter


def test_each_thread_reads_signals_with_its_own_parser() -> None:
    """Two invocations in two threads never share a SignalReader; one thread always gets the same."""
    unused: Any = None
    exporter = Exporter(
        exports_of=unused, ledger_for=unused, sink_for=unused, backlog=unused, dead_letters=unused
    )
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(exporter.reader))
    thread.start()
    thread.join()
    assert exporter.reader is exporter.reader
    assert seen[0] is not exporter.reader
