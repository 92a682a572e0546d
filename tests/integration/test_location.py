"""The location option through the registered functions, on Azurite and the ADLS Gen2 emulator: live
signals enriched as the README says, the rest of each signal byte for byte; held and replayed signals
equal to the live ones, whatever the database became meanwhile."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devstack.adls_emulator import AdlsEmulator
from devstack.queue_runner import QueueRunner
from shared.model import Export, LocationOption
from shared.runtime import Runtime, use_runtime
from tests.geodata import FULL_V4, LOCATIONS, RENAMED_DATABASE, UNKNOWN_V4, write_database
from tests.integration.conftest import Customer, regenerated_key, run_health_check
from tests.support import Producer, Sent, registered, trigger_batch

pytestmark = pytest.mark.integration

OPTION = LocationOption(ip_field="/client/ip", key="location", anonymize=True)


@pytest.fixture
def located(service: Runtime, tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    """The service with a location database (a file the operator names)."""
    database = write_database(tmp_path / "city.mmdb")
    runtime = Runtime(replace(service.settings, location_database_path=str(database)))
    use_runtime(runtime)
    yield runtime, database
    use_runtime(service)


def body(n: int, address: str | None) -> bytes:
    client = f'"client":{{"ip":"{address}","agent":"x"}},' if address else ""
    return f'{{"name":"click",{client}"n":{n}, "odd":  [1,2]}}'.encode()


def send(producer: Producer, project: str, addresses: list[str | None]) -> list[Sent]:
    first = producer.next_sequence
    sent = [producer.send(body(n, a), {"projectId": project}) for n, a in enumerate(addresses, start=first)]
    registered("export_signals")(trigger_batch("0", sent))
    return sent


def test_live_signals_carry_the_location_and_the_rest_byte_for_byte(
    located: tuple[Runtime, Path], customer: Customer, create_export: Callable[..., Export], project: str
) -> None:
    """A public address: located and anonymised; a private one, none, or one the database does not know:
    as sent (the unknown one anonymised); every other byte as sent, spacing included."""
    runtime, _ = located
    fs = f"loc{project[-8:]}"
    export = create_export(project, "lake", customer.adls(fs, ""))
    runtime.exports.put(replace(runtime.exports.get(*export.key)[0], location=OPTION))
    runtime.registry.invalidate()
    producer = Producer(located_start(runtime))
    sent = send(producer, project, [FULL_V4, "10.1.2.3", None, UNKNOWN_V4])
    lines = [line for lines in customer.lake_files(fs).values() for line in lines]
    assert len(lines) == 4
    full, private, none, unknown = lines
    assert json.loads(full)["location"] == LOCATIONS[FULL_V4]
    anonymised = FULL_V4.rsplit(".", 1)[0] + ".0"
    assert full.startswith(sent[0].body[:-1].replace(FULL_V4.encode(), anonymised.encode()))
    assert private == sent[1].body and none == sent[2].body
    assert unknown == sent[3].body.replace(UNKNOWN_V4.encode(), b"9.9.9.0")


def test_held_signals_are_replayed_as_they_were_located_when_held(
    located: tuple[Runtime, Path],
    customer: Customer,
    create_export: Callable[..., Export],
    project: str,
    lake: AdlsEmulator,
) -> None:
    """Signals held while the destination failed carry the location they got then; the operator
    replaced the database before the resume: the replayed signals are still those, each once."""
    runtime, database = located
    fs = f"lh{project[-8:]}"
    export = create_export(project, "lake", customer.adls(fs, ""))
    runtime.exports.put(replace(runtime.exports.get(*export.key)[0], location=OPTION))
    runtime.registry.invalidate()
    producer = Producer(located_start(runtime))
    send(producer, project, [FULL_V4])
    run_health_check()
    with regenerated_key(lake):
        send(producer, project, [FULL_V4, FULL_V4])
        run_health_check()
    write_database(database, RENAMED_DATABASE)  # the operator's new version: another city name
    runtime.resumer.resume(runtime.exports.get(*export.key)[0])
    QueueRunner(runtime.replay_queue, runtime.poison_queue, registered("replay_backlog")).drain()
    lines = [json.loads(line) for lines in customer.lake_files(fs).values() for line in lines]
    assert sorted(line["n"] for line in lines) == [0, 1, 2]
    assert all(line["location"]["city"] == "Sampleton" for line in lines)


def located_start(runtime: Runtime) -> datetime:
    """Early in the current hour: the test's signals share one hourly file."""
    return datetime.fromtimestamp(runtime.clock(), UTC).replace(minute=1, second=0, microsecond=0)
