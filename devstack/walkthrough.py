"""The walkthrough `scripts/run` runs: the whole service, locally, from exports to files, through a
broken destination and back, ending with proof that every signal landed exactly once.

1. start the local stack (storage, the functions, the management API, the local Entra ID);
2. create three exports of a project through the HTTP API, with a development token: ADLS Gen2, hourly
   files, every signal, with the account key; Blob (Application Insights layout), two signal names;
   and a keyless one: ADLS Gen2 with Microsoft Entra ID, after the onboarding the API describes (the
   role assignment made as the customer would, on the emulator);
3. send signals of two projects (only the first has exports) and show the files they landed in;
4. regenerate the ADLS Gen2 account's key: writes with the key fail, the health check postpones that
   export and its signals wait in the backlog; the Entra ID export carries on;
5. patch the export with the new key (the API checks it and resumes the export): the replay queue
   drains the backlog into the destination;
6. read every file back with the SDKs and compare with what was sent, per destination and signal.

Each run uses fresh project ids and a fresh filesystem and container, so it can run again and again
on the same data folder.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from devstack.errors import DevstackError
from devstack.host import (
    BLOB_ACCOUNT,
    DATA,
    DEFAULT_PORT,
    DEFAULT_STORAGE_PORT,
    LAKE_ACCOUNT,
    HostOptions,
    LocalHost,
    template_settings,
)
from devstack.producer import LocalTarget
from devstack.sources import BatchPolicy, Message, generated
from devstack.triggers import wait_until

NAMES = ("pageView", "click", "purchase", "error")
BLOB_NAMES = ("pageView", "purchase")
LAKE_EXPORT = "lake"
BLOB_EXPORT = "appinsights"
KEYLESS_EXPORT = "keyless"


@dataclass(frozen=True)
class WalkOptions:
    short: bool = False
    port: int = DEFAULT_PORT
    storage_port: int = DEFAULT_STORAGE_PORT
    data_dir: Path = DATA
    timeout: float = 120.0  # for each wait


@dataclass(frozen=True)
class SentSignal:
    id: str
    project: str
    name: str


@dataclass
class Run:
    """This run's names and everything it sent."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    sent: list[SentSignal] = field(default_factory=list)

    @property
    def project(self) -> str:
        return f"shop-{self.tag}"

    @property
    def other_project(self) -> str:
        return f"news-{self.tag}"

    @property
    def filesystem(self) -> str:
        return f"signals-{self.tag}"

    @property
    def container(self) -> str:
        return f"appinsights-{self.tag}"

    @property
    def keyless_filesystem(self) -> str:
        return f"keyless-{self.tag}"

    def wave(self, number: int, count: int) -> list[Message]:
        messages = list(
            generated([self.project, self.other_project], NAMES, count=count, run=f"{self.tag}.{number}")
        )
        for body, _ in messages:
            parsed = json.loads(body)
            self.sent.append(SentSignal(parsed["id"], parsed["projectId"], parsed["name"]))
        return messages


class Walkthrough:
    def __init__(self, options: WalkOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console()
        self.run = Run()
        self.host = LocalHost(
            HostOptions(
                data_dir=options.data_dir,
                port=options.port,
                storage_port=options.storage_port,
                batch=BatchPolicy(max_batch_size=512, min_batch_size=64, max_wait=0.25),
                queue_polling=1.0,
            )
        )
        self.http: httpx.Client | None = None
        self.step = 0
        counts = (200, 60, 40, 40) if options.short else (2000, 400, 200, 300)
        self.counts = dict(zip(("first", "broken", "postponed", "resumed"), counts, strict=True))

    # -- helpers --------------------------------------------------------------------------------------

    def _title(self, text: str) -> None:
        self.step += 1
        self.console.print()
        self.console.rule(f"[bold]{self.step}. {text}", align="left")

    def _api(self) -> httpx.Client:
        assert self.http is not None
        return self.http

    def _check(self, response: httpx.Response, *expected: int) -> Any:
        if response.status_code not in expected:
            raise DevstackError(
                f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
                f"{response.text[:500]}"
            )
        return response.json() if response.content else None

    def _health(self, export_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._check(
            self._api().get(f"/api/projects/{self.run.project}/exports/{export_id}/health"), 200
        )
        return result

    def _send(self, label: str, messages: list[Message]) -> None:
        target = LocalTarget(self.host.url)
        try:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            ) as progress:
                sending = progress.add_task(f"sending {label}", total=len(messages))
                target.send(messages, progress=lambda n: progress.advance(sending, n))
                exporting = progress.add_task("exporting (Event Hub function)", total=len(messages))

                def tick(left: int) -> None:
                    progress.update(exporting, completed=len(messages) - min(left, len(messages)))

                if not target.wait(self.options.timeout, on_tick=tick):
                    raise DevstackError(
                        f"the local host did not export {label} in {self.options.timeout:g} s"
                    )
                progress.update(exporting, completed=len(messages))
        finally:
            target.close()

    def _health_check(self) -> None:
        self._check(self._api().post("/admin/functions/check_health"), 202)

    # -- the steps ------------------------------------------------------------------------------------

    def start(self) -> None:
        env = os.environ
        configured = [
            name
            for name in ("AzureWebJobsStorage", "AzureWebJobsStorage__blobServiceUri", "EventHubConnection")
            if env.get(name) or (name == "EventHubConnection" and template_settings().get(name))
        ]
        if configured:
            raise DevstackError(
                "The walkthrough runs on local storage and the local hub, but "
                f"{' and '.join(configured)} is set: unset it (it is for `scripts/run host`)."
            )
        self._title("Start the local stack")
        with self.console.status("starting Azurite, the ADLS Gen2 emulator and the functions..."):
            self.host.start()
        token = self.host.issuer.mint(
            [f"Exports.Write.{self.run.project}", f"Exports.Write.{self.run.other_project}"],
            subject="walkthrough",
        )
        self.http = httpx.Client(
            base_url=self.host.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_row("management API", self.host.api_url)
        table.add_row("service storage", "Azurite (blob, queue, table), account devstoreaccount1")
        table.add_row("customer Blob account", self.host.blob_url)
        table.add_row("customer ADLS Gen2 account", self.host.lake_url)
        table.add_row("Event Hub", "the local hub: 4 partitions (no EventHubConnection set)")
        table.add_row(
            "health check", f"timer {self.host.timer.schedule.expression if self.host.timer else '?'}"
        )
        table.add_row("data folder", str(self.host.data_dir))
        self.console.print(table)

    def create_exports(self) -> None:
        self._title(f"Create three exports for project {self.run.project} (HTTP API, development token)")
        keys = self.host.keys
        lake = {
            "destination": {
                "type": "adls",
                "uri": self.host.lake_url + "/",
                "path": f"{self.run.filesystem}/signals/",
                "sharedKey": keys[LAKE_ACCOUNT],
            },
            "granularity": "hour",
            "signals": "all",
        }
        blob = {
            "destination": {
                "type": "blob",
                "uri": self.host.blob_url + "/",
                "container": self.run.container,
                "sharedKey": keys[BLOB_ACCOUNT],
            },
            "signals": list(BLOB_NAMES),
        }
        self.console.print(f"PUT /api/projects/{self.run.project}/exports/<id> with If-None-Match: *")
        table = Table(show_header=False, box=None, padding=(0, 2))
        for export_id, document in ((LAKE_EXPORT, lake), (BLOB_EXPORT, blob)):
            path = f"/api/projects/{self.run.project}/exports/{export_id}"
            response = self._api().put(path, json=document, headers={"If-None-Match": "*"})
            created = self._check(response, 201)
            destination = created["destination"]
            where = (
                f"path {destination['path']} ({created.get('granularity')}ly files)"
                if destination["type"] == "adls"
                else f"container {destination['container']} (Application Insights layout)"
            )
            signals = (
                created["signals"] if isinstance(created["signals"], str) else ", ".join(created["signals"])
            )
            table.add_row(
                f"[bold]{export_id}[/]",
                f"{response.status_code} Created, status [green]{created['status']}[/]\n"
                f"{destination['type']} {destination['uri']}\n{where}\nsignals: {signals}",
            )
        self.console.print(table)
        self.create_keyless_export()
        self.console.print(
            f"Project [bold]{self.run.other_project}[/] has no export: its signals must land nowhere."
        )

    def create_keyless_export(self) -> None:
        """The keyless export: the onboarding the API gives, the customer's steps (the filesystem claimed
        for the project, the role assignment on it, made on the emulator as `az role assignment create`
        would in Azure), then the export with Microsoft Entra ID: no key given or stored."""
        keyless = self.host.storage.keyless_status() if self.host.storage is not None else {}
        if not keyless:
            raise DevstackError("the local Entra ID is not running: keyless exports need it")
        destination = {
            "type": "adls",
            "uri": keyless["lakeHttps"] + "/",
            "path": f"{self.run.keyless_filesystem}/signals/",
            "entra": {"tenantId": keyless["lakeTenant"]},
        }
        path = f"/api/projects/{self.run.project}/onboarding"
        onboarding = self._check(self._api().post(path, json={"destination": destination}), 200)
        role = onboarding["roleAssignment"]
        lines = [
            f"POST {path}: for tenant {onboarding['tenantId']}",
            f"principal   {onboarding['principal']}",
            f"consent     {onboarding.get('adminConsentUrl') or '(none: the service tenant)'}",
            f"role        {role['role']} on {role['scope'].split('/providers/', 1)[-1]}",
            f"az          {role['azCommand']}",
            f"claim       {onboarding['claim']['azCommand']}",
        ]
        self.console.print(Panel("\n".join(lines), title="Onboarding a keyless (Microsoft Entra ID) export"))
        from azure.storage.filedatalake import DataLakeServiceClient

        from devstack.adls_emulator import CONTRIBUTOR

        credential = {"account_name": LAKE_ACCOUNT, "account_key": self.host.keys[LAKE_ACCOUNT]}
        claim = onboarding["claim"]
        with DataLakeServiceClient(self.host.lake_url, credential=credential) as lake:
            lake.create_file_system(self.run.keyless_filesystem, metadata={claim["metadata"]: claim["value"]})
        self.host.lake.assign_role(
            LAKE_ACCOUNT, keyless["lakePrincipal"], CONTRIBUTOR, self.run.keyless_filesystem
        )
        self.console.print(
            f"The customer created filesystem {self.run.keyless_filesystem}, claimed it for the project "
            "in its metadata and assigned the role on it (consent was given when the local tenant was made)."
        )
        export = {"destination": destination, "granularity": "hour", "signals": "all"}
        url = f"/api/projects/{self.run.project}/exports/{KEYLESS_EXPORT}"
        response = self._api().put(url, json=export, headers={"If-None-Match": "*"})
        created = self._check(response, 201)
        self.console.print(
            f"PUT {url} -> {response.status_code} Created, status [green]{created['status']}[/], "
            f"authentication [bold]{created['destination']['authentication']}[/] (no key given or stored)."
        )

    def send_first(self) -> None:
        self._title("Send signals of two projects")
        self._send("signals", self.run.wave(1, self.counts["first"]))
        self._health_check()
        self.show_files()
        health = self._health(LAKE_EXPORT)
        self.console.print(
            f"Health check: ADLS Gen2 export [green]{health['status']}[/], "
            f"{health['counters']['exported']} signals exported."
        )

    def show_files(self) -> None:
        table = Table("file", "signals", title="Where the files landed", box=box.SIMPLE_HEAD, pad_edge=False)
        table.columns[0].overflow = "fold"
        table.columns[1].justify = "right"
        for label, files in (
            (f"ADLS Gen2: {self.host.lake_url}/{self.run.filesystem}/", self.lake_files()),
            (f"Blob: {self.host.blob_url}/{self.run.container}/", self.blob_files()),
        ):
            table.add_row(f"[bold]{label}[/]", "", end_section=False)
            listed = sorted(files.items())
            for path, lines in listed[:8]:
                table.add_row(path, str(len(lines)))
            if len(listed) > 8:
                rest = sum(len(lines) for _, lines in listed[8:])
                table.add_row(f"... and {len(listed) - 8} more files", str(rest))
            table.add_section()
        self.console.print(table)

    def break_destination(self) -> None:
        self._title("Regenerate the ADLS Gen2 account key (the export's key is now wrong)")
        self.host.rotate_lake_key()
        self.console.print(
            "The customer regenerated the key of account [bold]customerlake[/]: writes now fail."
        )
        self._send("signals while the key is wrong", self.run.wave(2, self.counts["broken"]))
        self._health_check()
        health = self._health(LAKE_EXPORT)
        self._show_health(health, "After the health check")
        if health["status"] != "postponed":
            raise DevstackError(f"the export should be postponed, it is {health['status']}")
        blob = self._health(BLOB_EXPORT)
        self.console.print(
            f"The Blob export is not affected: [green]{blob['status']}[/], "
            f"{blob['counters']['exported']} signals exported."
        )
        keyless = self._health(KEYLESS_EXPORT)
        self.console.print(
            "Nor is the Entra ID export on the same account (it holds no key): "
            f"[green]{keyless['status']}[/], {keyless['counters']['exported']} signals exported."
        )
        if keyless["status"] != "active":
            raise DevstackError(f"the Entra ID export should be active, it is {keyless['status']}")
        self._send("signals while postponed", self.run.wave(3, self.counts["postponed"]))
        health = self._health(LAKE_EXPORT)
        self.console.print(
            f"Backlog: [yellow]{health['counters']['backlogged']}[/] signals kept in "
            f"{health['backlog']['files']} backlog files ({health['backlog']['bytes']} bytes)."
        )

    def _show_health(self, health: dict[str, Any], title: str) -> None:
        lines = [
            f"status      [bold yellow]{health['status']}[/]",
            f"cause       {health.get('cause')}",
            f"explanation {health.get('explanation')}",
            *(f"hint        {hint}" for hint in health.get("hints", [])),
            f"exported    {health['counters']['exported']}",
            f"backlogged  {health['counters']['backlogged']}",
            f"last error  {health.get('lastErrorCode')}",
        ]
        self.console.print(Panel("\n".join(lines), title=f"{title}: GET .../exports/{LAKE_EXPORT}/health"))

    def fix_destination(self) -> None:
        self._title("Patch the export with the new key: the API checks it and resumes the export")
        path = f"/api/projects/{self.run.project}/exports/{LAKE_EXPORT}"
        current = self._check(self._api().get(path), 200)
        response = self._api().patch(
            path,
            content=json.dumps({"destination": {"sharedKey": self.host.keys[LAKE_ACCOUNT]}}),
            headers={"Content-Type": "application/merge-patch+json", "If-Match": current["etag"]},
        )
        patched = self._check(response, 200)
        health = self._health(LAKE_EXPORT)
        self.console.print(
            f"PATCH {path} -> {response.status_code}: status [green]{patched['status']}[/], "
            f"{health['replay']['itemsLeft']} backlog files queued for replay."
        )
        if patched["status"] != "active":
            raise DevstackError(f"the export should be active again, it is {patched['status']}")
        if self.host.queue is not None:
            self.host.queue.wake()
        backlogged = max(1, health["backlog"]["bytes"])
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[left]}"),
            TimeElapsedColumn(),
            console=self.console,
        ) as progress:
            task = progress.add_task("replaying the backlog (queue function)", total=backlogged, left="")

            def drained() -> bool:
                view = self._health(LAKE_EXPORT)
                left = view["backlog"]["bytes"]
                progress.update(
                    task,
                    completed=backlogged - min(left, backlogged),
                    left=f"{view['backlog']['files']} files, {left} bytes left",
                )
                return bool(view["replay"]["itemsLeft"] == 0 and view["backlog"]["files"] == 0)

            if not wait_until(drained, self.options.timeout, interval=0.3):
                raise DevstackError(f"the backlog did not drain in {self.options.timeout:g} s")
        poison = self._health(LAKE_EXPORT)["replay"]["poisonedItems"]
        self.console.print(f"Backlog drained; poison queue items: {poison}.")
        self._send("signals after the resume", self.run.wave(4, self.counts["resumed"]))

    # -- reading back -------------------------------------------------------------------------------

    def lake_files(self, filesystem_name: str = "") -> dict[str, list[bytes]]:
        from azure.storage.filedatalake import DataLakeServiceClient

        service = DataLakeServiceClient(
            self.host.lake_url,
            credential={"account_name": LAKE_ACCOUNT, "account_key": self.host.keys[LAKE_ACCOUNT]},
        )
        filesystem = service.get_file_system_client(filesystem_name or self.run.filesystem)
        files: dict[str, list[bytes]] = {}
        for path in filesystem.get_paths(recursive=True):
            if not path.is_directory:
                data = filesystem.get_file_client(path.name).download_file().readall()
                files[path.name] = data.splitlines()
        return files

    def blob_files(self) -> dict[str, list[bytes]]:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient(
            self.host.blob_url,
            credential={"account_name": BLOB_ACCOUNT, "account_key": self.host.keys[BLOB_ACCOUNT]},
        )
        container = service.get_container_client(self.run.container)
        return {
            blob.name: container.download_blob(blob.name).readall().splitlines()
            for blob in container.list_blobs()
        }

    def verify(self) -> bool:
        self._title("Read every file back and compare with what was sent")
        lake, blob = self.lake_files(), self.blob_files()
        keyless = self.lake_files(self.run.keyless_filesystem)
        report = verify(
            self.run.sent,
            {
                "ADLS": (lake, lambda s: s.project == self.run.project, _lake_place(LAKE_EXPORT)),
                "Entra": (
                    keyless,
                    lambda s: s.project == self.run.project,
                    _lake_place(KEYLESS_EXPORT),
                ),
                "Blob": (
                    blob,
                    lambda s: s.project == self.run.project and s.name in BLOB_NAMES,
                    _blob_place(self.run.project),
                ),
            },
            self.run.other_project,
        )
        self.console.print(report.table(self.run.other_project))
        self.console.print(LEGEND, style="dim")
        if report.ok:
            self.console.print(
                f"[bold green]Every signal of {self.run.project} is in the right destination exactly once, "
                f"and no signal of {self.run.other_project} is anywhere.[/]"
            )
        else:
            self.console.print("[bold red]Some signals are missing, duplicated or misplaced (see above).[/]")
        return report.ok

    def explore(self) -> None:
        self._title("Explore further")
        url = f"http://localhost:{DEFAULT_PORT}"
        project = self.run.project
        steps = [
            ("scripts/run host", f"the local host, until Ctrl-C: the API on {url}/api (docs: /api/docs)"),
            (f"TOKEN=$(scripts/run token --project {project})", "a development token for the API"),
            (f'curl -H "Authorization: Bearer $TOKEN" {url}/api/projects/{project}/exports', "its exports"),
            (f"scripts/run produce --generate 1000 --project {project}", "more signals, to the running host"),
            (f"curl -X POST {url}/admin/functions/check_health", "the health check, now"),
            (
                f"ls {self.host.data_dir}",
                "storage kept between runs (azurite/, adls/), keys, logs/host.log",
            ),
            ("scripts/run --help", "every command; local.settings.json holds the settings for `func start`"),
        ]
        for command, what in steps:
            self.console.print(f"  [bold]{command}[/]", soft_wrap=True, highlight=False)
            self.console.print(f"      {what}", style="dim")

    def main(self) -> int:
        started = time.monotonic()
        try:
            self.start()
            self.create_exports()
            self.send_first()
            self.break_destination()
            self.fix_destination()
            ok = self.verify()
        finally:
            if self.http is not None:
                self.http.close()
            with self.console.status("stopping the local stack..."):
                self.host.stop()
        self.explore()
        self.console.print(f"Walkthrough finished in {time.monotonic() - started:.0f} s.")
        return 0 if ok else 1


# -- the comparison -------------------------------------------------------------------------------------

Placement = Callable[[str, dict[str, Any]], bool]
LEGEND = (
    "sent: signals sent that the export selects; found: its lines in the export's files; once: "
    "signals found exactly once; dup: found more than once; stray: lines the export should not have; "
    "misplaced: lines in a file that the layout does not give them; none: the project without exports."
)


def _lake_place(export_id: str) -> Placement:
    """An ADLS Gen2 file of the export: `<dir>/yyyy/MM/dd/HH/<export>_<partition>[_replay-...].jsonl`."""

    def right(path: str, signal: dict[str, Any]) -> bool:
        name = path.rsplit("/", 1)[-1]
        return path.startswith("signals/") and name.startswith(f"{export_id}_") and name.endswith(".jsonl")

    return right


def _blob_place(project: str) -> Placement:
    """A blob of the project and the signal's name: `<project>/<name>/<date>/<HH>/...`."""

    def right(path: str, signal: dict[str, Any]) -> bool:
        parts = path.split("/")
        return len(parts) >= 5 and parts[0] == project and parts[1] == signal.get("name")

    return right


@dataclass
class Row:
    destination: str
    name: str
    expected: int = 0
    found: int = 0
    once: int = 0
    missing: int = 0
    duplicated: int = 0
    unexpected: int = 0
    misplaced: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.missing == 0
            and self.duplicated == 0
            and self.unexpected == 0
            and self.misplaced == 0
            and self.once == self.expected
        )


@dataclass
class Report:
    rows: list[Row]
    other_project_found: int
    other_project_sent: int

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows) and self.other_project_found == 0

    def table(self, other_project: str) -> Table:
        table = Table(
            "export",
            "signal",
            "sent",
            "found",
            "once",
            "missing",
            "dup",
            "stray",
            "misplaced",
            "ok",
            title="Every signal, read back with the Azure SDKs",
            box=box.SIMPLE_HEAD,
            padding=(0, 1),
            collapse_padding=True,
            pad_edge=False,
        )
        for column in table.columns[2:9]:
            column.justify = "right"
        for row in self.rows:
            total = row.name == "all"
            table.add_row(
                row.destination,
                f"[bold]{row.name}[/]" if total else row.name,
                str(row.expected),
                str(row.found),
                str(row.once),
                str(row.missing),
                str(row.duplicated),
                str(row.unexpected),
                str(row.misplaced),
                "[green]✓[/]" if row.ok else "[red]✗[/]",
                end_section=total,
            )
        table.add_row(
            "none",
            f"{other_project}",
            str(self.other_project_sent),
            str(self.other_project_found),
            "",
            "",
            "",
            str(self.other_project_found),
            "",
            "[green]✓[/]" if self.other_project_found == 0 else "[red]✗[/]",
        )
        return table


def verify(
    sent: Iterable[SentSignal],
    destinations: dict[str, tuple[dict[str, list[bytes]], Callable[[SentSignal], bool], Placement]],
    other_project: str,
) -> Report:
    """Compare files with what was sent: per destination and signal name, every expected signal once,
    nothing else, each in a file where the layout puts it."""
    sent = list(sent)
    by_id = {s.id: s for s in sent}
    rows: list[Row] = []
    foreign_ids: set[str] = set()
    for label, (files, wanted, placed) in destinations.items():
        expected = {s.id for s in sent if wanted(s)}
        found: Counter[str] = Counter()
        misplaced: Counter[str] = Counter()
        names: dict[str, str] = {}
        for path, lines in files.items():
            for line in lines:
                try:
                    signal = json.loads(line)
                except ValueError:
                    signal = {}
                signal_id = str(signal.get("id", line[:40]))
                found[signal_id] += 1
                names[signal_id] = str(signal.get("name", "?"))
                if not placed(path, signal):
                    misplaced[signal_id] += 1
                if signal_id in by_id and not wanted(by_id[signal_id]):
                    foreign_ids.add(signal_id)
        for name in sorted({s.name for s in sent} | set(names.values())):
            ids_expected = {i for i in expected if by_id[i].name == name}
            ids_found = {i for i, n in names.items() if n == name}
            row = Row(label, name, expected=len(ids_expected))
            row.found = sum(found[i] for i in ids_found)
            row.once = sum(1 for i in ids_expected if found[i] == 1)
            row.missing = sum(1 for i in ids_expected if found[i] == 0)
            row.duplicated = sum(1 for i in ids_expected if found[i] > 1)
            row.unexpected = sum(found[i] for i in ids_found - ids_expected)
            row.misplaced = sum(misplaced[i] for i in ids_found)
            if row.expected or row.found:
                rows.append(row)
        total = Row(label, "all", expected=len(expected))
        total.found = sum(found.values())
        total.once = sum(1 for i in expected if found[i] == 1)
        total.missing = sum(1 for i in expected if found[i] == 0)
        total.duplicated = sum(1 for i in expected if found[i] > 1)
        total.unexpected = sum(n for i, n in found.items() if i not in expected)
        total.misplaced = sum(misplaced.values())
        rows.append(total)
    others = [s for s in sent if s.project == other_project]
    other_ids = {s.id for s in others}
    return Report(rows, len(foreign_ids & other_ids), len(others))
