"""Where replayed signals land: in the folder of the time of the replay (default), where a reader that
moves forward through the folders finds them; or back in their original time buckets
(`replayPlacement: original`). An outage that spans an hour boundary, then a resume hours later."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.adls_emulator import AdlsEmulator
from devstack.queue_runner import QueueRunner
from shared.model import Export, ExportStatus, ReplayPlacement
from shared.runtime import Runtime
from tests.integration.conftest import (
    Customer,
    DiesAfterAReplayWrite,
    Traffic,
    instance,
    regenerated_key,
    run_health_check,
)
from tests.support import Producer, registered

pytestmark = pytest.mark.integration

HOUR = 3600.0


@pytest.fixture
def outage(
    service: Runtime,
    customer: Customer,
    create_export: Callable[..., Export],
    traffic: Traffic,
    lake: AdlsEmulator,
) -> dict[str, Any]:
    """Signals from 07:50 to 08:15 (three hours ago and more); the key regenerated at 07:55, so the
    export is postponed and everything after waits in the backlog, on both sides of 08:00."""
    now = datetime.fromtimestamp(service.clock(), UTC)
    start = (now - timedelta(hours=3)).replace(minute=50, second=0, microsecond=0)
    traffic.producer = Producer(start)
    fs = f"pl{traffic.project[-8:]}"
    export = create_export(traffic.project, "lake", customer.adls(fs, "signals"))
    for _ in range(5):
        traffic.send(1, after=timedelta(minutes=1))
    run_health_check()
    with regenerated_key(lake):
        for _ in range(20):
            traffic.send(1, after=timedelta(minutes=1))
            if len(traffic.sent) == 8:
                run_health_check()
                service.registry.invalidate()
    assert service.exports.get(*export.key)[0].status is ExportStatus.POSTPONED
    held = traffic.sent[5:]
    assert {f"{e.enqueued:%H}" for e in held} == {f"{start:%H}", f"{start + timedelta(hours=1):%H}"}
    return {"export": export, "fs": fs, "start": start, "resumed": now}


def replay_all(service: Runtime, *, twice: bool = False, crash: bool = False) -> None:
    """The queue function drains the replay queue: each message once, or twice (at-least-once
    delivery), or with the instance dying after the replay file is written (then the message again)."""
    handler = registered("replay_backlog")
    if crash:
        dying = QueueRunner(service.replay_queue, service.poison_queue, handler, max_dequeue_count=100)
        with instance(DiesAfterAReplayWrite(service.settings, clock=service.clock), then=service):
            dying.run_once()
        assert dying.failures  # it died after writing
    run = (lambda message: (handler(message), handler(message))) if twice else handler
    QueueRunner(service.replay_queue, service.poison_queue, run).drain()


def read_forward(files: dict[str, list[bytes]]) -> list[tuple[str, bytes]]:
    """A reader that processes each hour folder once, in order (as the Application Insights document
    tells customers they can), reading every file in it."""
    return [(path, line) for path in sorted(files) for line in files[path]]


@pytest.mark.parametrize("fault", ["none", "twice", "crash"])
def test_replayed_signals_land_in_the_folder_of_the_replay(
    service: Runtime,
    customer: Customer,
    traffic: Traffic,
    outage: dict[str, Any],
    fault: str,
) -> None:
    """Default placement: a reader moving forward, after the folders of the outage were done, still
    finds every replayed signal once, in the folder of the hour of the resume; the health view says so."""
    resumed: datetime = outage["resumed"]
    service.clock = lambda: resumed.timestamp()
    service.resumer.resume(outage["export"])
    replay_all(service, twice=fault == "twice", crash=fault == "crash")
    seen = read_forward(customer.lake_files(outage["fs"]))
    lines = [line for _, line in seen]
    assert sorted(lines) == sorted(e.body for e in traffic.sent)  # each signal exactly once
    folder = f"signals/{resumed:%Y/%m/%d/%H}"
    for event in traffic.sent[5:]:
        (path,) = [p for p, line in seen if line == event.body]
        assert path.startswith(f"{folder}/lake_0_replay-") and path.endswith(".jsonl"), path
    for event in traffic.sent[:5]:
        (path,) = [p for p, line in seen if line == event.body]
        assert path == f"signals/{event.enqueued:%Y/%m/%d/%H}/lake_0.jsonl"
    assert service.health_view.of(*outage["export"].key)["replay"]["lastFolder"] == folder


@pytest.mark.parametrize("fault", ["none", "twice", "crash"])
def test_with_original_placement_replayed_signals_go_back_to_their_time_buckets(
    service: Runtime,
    customer: Customer,
    traffic: Traffic,
    outage: dict[str, Any],
    fault: str,
) -> None:
    """`replayPlacement: original`: each replayed signal beside the live file of its own hour, once."""
    export = outage["export"]
    current, _ = service.exports.get(*export.key)
    service.exports.put(replace(current, replay_placement=ReplayPlacement.ORIGINAL))
    service.clock = lambda: outage["resumed"].timestamp()
    service.resumer.resume(export)
    replay_all(service, twice=fault == "twice", crash=fault == "crash")
    seen = read_forward(customer.lake_files(outage["fs"]))
    assert sorted(line for _, line in seen) == sorted(e.body for e in traffic.sent)
    for event in traffic.sent[5:]:
        (path,) = [p for p, line in seen if line == event.body]
        assert path.startswith(f"signals/{event.enqueued:%Y/%m/%d/%H}/lake_0_replay-"), path
