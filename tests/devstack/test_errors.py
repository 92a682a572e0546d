"""What goes wrong on a developer's machine ends the command at once, with a clear message and a
non-zero exit status: a port in use, no Node.js, an Event Hub that cannot be reached."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.devstack import devstack

UNREACHABLE_HUB = (
    "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=dev;SharedAccessKey=ZGV2a2V5;EntityPath=signals"
)


def test_a_port_in_use_stops_the_host_with_a_clear_message(tmp_path: Path) -> None:
    """Something listens on the HTTP port: exit 3 naming the port and what to do; nothing is started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = devstack("host", "--port", str(port), "--storage-port", "0", "--data-dir", str(tmp_path))
    assert result.returncode == 3, result.stderr
    assert f"Port {port}" in result.stderr and "in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "azurite").exists()


def test_a_storage_port_in_use_is_named_too(tmp_path: Path) -> None:
    """Azurite's ports are checked before anything starts (--storage-port)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = devstack("host", "--port", "0", "--storage-port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 3, result.stderr
    assert f"Port {port} (Azurite blob) is in use" in result.stderr


def test_missing_nodejs_stops_the_host_with_a_clear_message(tmp_path: Path) -> None:
    """No `node` on PATH (simulated with an empty PATH): exit 4, saying Azurite needs Node.js 18+."""
    empty = tmp_path / "bin"
    empty.mkdir()
    result = devstack(
        "host",
        "--port",
        "0",
        "--storage-port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        env={"PATH": str(empty)},
    )
    assert result.returncode == 4, result.stderr
    assert "Node.js is not installed" in result.stderr and "18" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_walkthrough_reports_missing_nodejs_the_same_way(tmp_path: Path) -> None:
    """The README's first command fails the same clear way on a machine without Node.js."""
    empty = tmp_path / "bin"
    empty.mkdir()
    result = devstack(
        "walkthrough",
        "--port",
        "0",
        "--storage-port",
        "0",
        "--data-dir",
        str(tmp_path / "d"),
        env={"PATH": str(empty)},
    )
    assert result.returncode == 4 and "Node.js is not installed" in result.stderr


def test_an_unreachable_event_hub_stops_the_host_fast_with_a_clear_message(tmp_path: Path) -> None:
    """A connection string pointing at 127.0.0.1:1: the host gives up within the check timeout,
    names the hub, and starts no storage."""
    started = time.monotonic()
    result = devstack(
        "host",
        "--port",
        "0",
        "--storage-port",
        "0",
        "--data-dir",
        str(tmp_path),
        "--check-timeout",
        "5",
        env={"EventHubConnection": UNREACHABLE_HUB},
    )
    assert result.returncode == 1, result.stderr
    assert "The Event Hub signals at 127.0.0.1:1 cannot be reached" in result.stderr
    assert "EventHubConnection" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "azurite").exists()


def test_an_unreachable_event_hub_stops_the_producer_fast_with_a_clear_message() -> None:
    """`produce --to eventhub` checks the hub before sending anything."""
    started = time.monotonic()
    result = devstack(
        "produce",
        "--to",
        "eventhub",
        "--connection",
        UNREACHABLE_HUB,
        "--generate",
        "3",
        "--check-timeout",
        "5",
    )
    assert result.returncode == 1, result.stderr
    assert "cannot be reached" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_the_producer_says_when_the_local_host_is_not_running() -> None:
    """Sending to a local host that does not answer: exit 1 and how to start one."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = devstack("produce", "--generate", "3", "--url", f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert "does not answer" in result.stderr and "scripts/run host" in result.stderr
