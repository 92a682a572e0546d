"""A replay work item handed out again while its first delivery still runs (its visibility timeout
passed): the two deliveries race to create the same replay file, and the later-read one holds more."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from typing import Any

import azure.functions as func
import pytest

from devstack.queue_runner import QueueRunner
from shared.eventhub import batch_from_trigger
from shared.model import Export, ExportStatus
from shared.replay import ReplayFiles
from shared.runtime import Runtime
from tests.integration.conftest import Customer, Traffic, all_lines, instance
from tests.integration.test_replay import STALE_FOR, postponed, runner
from tests.support import registered, trigger_batch

pytestmark = pytest.mark.integration

__all__ = ["postponed"]  # the fixture, used by name


class Overtaken(ReplayFiles):
    """Replay files whose first creation is overtaken: just before it, `meanwhile` runs to its end."""

    meanwhile: Callable[[], None] | None = None

    def create(self, export: Export, path: str, body: bytes, ends: dict[str, int]) -> dict[str, int]:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().create(export, path, body, ends)


class SlowInstance(Runtime):
    """Another instance of the service, whose replay is overtaken just before it creates a replay file."""

    @cached_property
    def replay_files(self) -> Overtaken:
        return Overtaken(self.destinations)


def test_a_replay_overtaken_by_its_own_redelivery_loses_no_signal(
    service: Runtime, customer: Customer, traffic: Traffic, postponed: dict[str, Any]
) -> None:
    """The first delivery read the backlog and is about to create its replay file; meanwhile more signals
    are backlogged and the second delivery writes the file with all of them. The replay file is created
    only if absent: the first finds it there and leaves it, so the later signals are not overwritten."""
    export = postponed["export"]
    # Another instance, whose cache read the export while postponed: it keeps adding to the backlog.
    stale = Runtime(replace(service.settings, export_cache_seconds=STALE_FOR), clock=service.clock)
    assert stale.registry.exports_of(export.project_id)[0].status is ExportStatus.POSTPONED
    later = service.clock() + 2 * 3600  # the held hour is over: the backlog goes to a replay file
    service.clock = lambda: later
    service.resumer.resume(export)
    slow = SlowInstance(service.settings, clock=service.clock)
    handler = registered("replay_backlog")
    late: list[Any] = []

    def first_delivery(message: func.QueueMessage) -> None:
        def meanwhile() -> None:
            late.extend(
                traffic.producer.send(
                    b'{"name":"late","n":%d}' % (len(traffic.sent) + n), {"projectId": traffic.project}
                )
                for n in range(3)
            )
            report = stale.exporter.export(batch_from_trigger(trigger_batch("0", late)))
            assert report.exports[export.key].backlogged == len(late)
            traffic.sent.extend(late)
            with instance(service, then=slow):
                handler(message)  # the second delivery, to its end

        slow.replay_files.meanwhile = meanwhile
        with instance(slow, then=service):
            handler(message)

    QueueRunner(service.replay_queue, service.poison_queue, first_delivery).run_once()
    assert late, "the first delivery reached its replay file"
    runner(service).drain()
    files = customer.lake_files(postponed["fs"])
    assert all_lines(files) == traffic.lines()
    assert not [path for path in files if path.endswith(".tmp")]


@pytest.mark.parametrize("kind", ["adls", "blob"])
def test_a_replay_file_is_created_only_if_absent_in_either_storage(
    kind: str, service: Runtime, customer: Customer, create_export: Callable[..., Export], traffic: Traffic
) -> None:
    """Two deliveries of one work item create the same replay file: the first one's stays whole, and
    the second learns how far into the backlog that file covers (ADLS Gen2 rename, Blob Put Blob)."""
    name = f"once{kind}{traffic.project[-8:]}"
    destination = customer.adls(name, "") if kind == "adls" else customer.blob(name)
    export = create_export(traffic.project, "once", destination)
    path = "2026/11/30/10/once_0.replay-1a2b3c4d.jsonl"
    first, second = [b'{"name":"a","n":1}', b'{"name":"a","n":2}'], [b'{"name":"a","n":1}']
    assert service.replay_files.create(export, path, b"\n".join([*first, b""]), {"backlog/1": 80}) == {
        "backlog/1": 80
    }
    covered = service.replay_files.create(export, path, b"\n".join([*second, b""]), {"backlog/1": 40})
    assert covered == {"backlog/1": 80}
    files = customer.lake_files(name) if kind == "adls" else customer.blobs(name)
    assert files == {path: first}
