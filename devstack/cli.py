"""`python -m devstack` (and `scripts/run`): the local host, the producer, the walkthrough, tokens."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from devstack.errors import DevstackError
from devstack.host import DATA, DEFAULT_PORT, DEFAULT_STORAGE_PORT, HostOptions, LocalHost
from devstack.sources import Message, generated, read_ndjson

T = TypeVar("T")

app = typer.Typer(
    name="devstack",
    help="Run signals-export locally: the walkthrough, the local host, the producer, development tokens.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
console = Console()
errors = Console(stderr=True)

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Where local storage, keys and logs are kept between runs.")
]
Port = Annotated[int, typer.Option("--port", help="The HTTP port (API under /api); 0 picks a free one.")]
StoragePort = Annotated[
    int,
    typer.Option(
        "--storage-port",
        help="Azurite's blob port; queue and table use the next two, the ADLS Gen2 emulator +4. "
        "0 picks free ports.",
    ),
]
CheckTimeout = Annotated[
    float, typer.Option("--check-timeout", help="Seconds to wait for the Event Hub before giving up.")
]


def _run(action: Callable[[], T]) -> T:
    """Run a command: a DevstackError becomes a clear message and a non-zero exit, not a traceback."""
    try:
        return action()
    except DevstackError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        errors.print("interrupted")
        raise typer.Exit(130) from None


def _messages(
    source: str | None, projects: list[str], generate: int | None, rate: float, names: list[str]
) -> tuple[Iterator[Message], int | None]:
    """The signals to send and how many (None: unknown)."""
    if generate is not None:
        return generated(projects or ["demo"], names, count=generate or None, rate=rate), (generate or None)
    default = projects[0] if projects else None
    if source is None:
        if sys.stdin.isatty():
            raise DevstackError("give an NDJSON FILE, '-' for standard input, or --generate N")
        source = "-"
    if source == "-":
        return read_ndjson(sys.stdin.buffer, default), None
    path = Path(source)
    if not path.is_file():
        raise DevstackError(f"{source}: no such file")
    lines = sum(1 for line in path.open("rb") if line.strip())
    return read_ndjson(path.open("rb"), default), lines


@app.command()
def walkthrough(
    short: Annotated[bool, typer.Option("--short", help="Fewer signals (for CI): about 10 s.")] = False,
    port: Port = DEFAULT_PORT,
    storage_port: StoragePort = DEFAULT_STORAGE_PORT,
    data_dir: DataDir = DATA,
    timeout: Annotated[
        float, typer.Option(help="Seconds each wait may take before the walkthrough fails.")
    ] = 120.0,
) -> None:
    """Start the local stack, create exports, send signals, break and fix a destination, prove every
    signal landed exactly once, stop. Exits 0 when every check passed."""
    from devstack.walkthrough import WalkOptions, Walkthrough

    options = WalkOptions(
        short=short, port=port, storage_port=storage_port, data_dir=data_dir, timeout=timeout
    )
    code = _run(lambda: Walkthrough(options, console).main())
    raise typer.Exit(code)


@app.command()
def host(
    port: Port = DEFAULT_PORT,
    bind: Annotated[str, typer.Option(help="The address the HTTP server listens on.")] = "127.0.0.1",
    storage_port: StoragePort = DEFAULT_STORAGE_PORT,
    data_dir: DataDir = DATA,
    partitions: Annotated[int, typer.Option(help="Partitions of the local hub.")] = 4,
    input_file: Annotated[
        str | None,
        typer.Option(
            "--input", help="NDJSON signals to feed the local hub: a file, or '-' for standard input."
        ),
    ] = None,
    generate: Annotated[
        float | None, typer.Option(help="Feed the local hub generated signals, this many per second.")
    ] = None,
    project: Annotated[
        list[str] | None,
        typer.Option(
            help="Project of NDJSON lines without a projectId field; of generated signals (repeatable)."
        ),
    ] = None,
    eventhub_connection: Annotated[
        str | None,
        typer.Option(
            "--eventhub-connection",
            envvar="EventHubConnection",
            help="Read a real Event Hub (connection string) instead of the local hub.",
            show_envvar=True,
        ),
    ] = None,
    check_timeout: CheckTimeout = 15.0,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every function run and request.")
    ] = False,
) -> None:
    """Run the functions of function_app.py and the management API until Ctrl-C: storage (Azurite and
    the ADLS Gen2 emulator) unless AzureWebJobsStorage is set; signals from a real Event Hub when
    EventHubConnection is set, else from the local hub (POST /_local/signals, --input, --generate)."""

    def serve() -> None:
        handler = RichHandler(console=errors, show_path=False, rich_tracebacks=False)
        handler.setLevel(logging.INFO if verbose else logging.WARNING)
        logging.getLogger().addHandler(handler)
        options = HostOptions(
            data_dir=data_dir,
            port=port,
            bind=bind,
            storage_port=storage_port,
            partitions=partitions,
            eventhub_connection=eventhub_connection or None,
            eventhub_check_timeout=check_timeout,
            access_log=verbose,
        )
        local = LocalHost(options)
        stopping = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        with console.status("starting the local host..."):
            local.start()
        try:
            _announce(local)
            if input_file is not None or generate is not None:
                _feed(local, input_file, generate, project or [], stopping)
            while not stopping.wait(0.5):
                pass
        finally:
            with console.status("stopping..."):
                local.stop()
        console.print("stopped")

    _run(serve)


def _announce(local: LocalHost) -> None:
    status = local.status()
    source = status["source"]
    if source["kind"] == "local":
        feed = (
            f"local hub, {len(source['partitions'])} partitions: "
            f"POST {local.url}/_local/signals (NDJSON), or `scripts/run produce`"
        )
    else:
        partitions = ", ".join(source["partitions"])
        feed = f"Event Hub {source['hub']} ({source['consumerGroup']}), partitions {partitions}"
    storage = status["storage"]
    lines = [
        f"management API   {local.api_url}   (docs: {local.api_url}/docs)",
        "token            scripts/run token --project <projectId>",
        f"signals          {feed}",
        f"health check     {status['timer']['schedule']}; "
        f"now: curl -X POST {local.url}/admin/functions/check_health",
        "replay queue     export-replay (queue function; poison queue export-replay-poison)",
        "notify queue     export-notify (queue function notify_webhook; poison queue export-notify-poison)",
    ]
    if storage["local"]:
        lines += [
            f"customer Blob    {storage['customerBlob']}   (key: {local.data_dir}/accounts.json)",
            f"customer ADLS    {storage['customerLake']}",
            *_keyless_lines(storage["keyless"]),
            f"data             {local.data_dir} (kept between runs); log {local.log_file}",
        ]
    lines.append("Ctrl-C stops the host and its storage.")
    console.print(Panel("\n".join(lines), title=f"local host on {local.url}"))


def _keyless_lines(keyless: dict[str, str]) -> list[str]:
    """The keyless stand-ins: where they listen, and the ids an export needs (devstack/keyless.py)."""
    if not keyless:
        return []
    return [
        f"keyless ADLS     {keyless['lakeHttps']} (tenant {keyless['lakeTenant']}; "
        f"principal {keyless['lakePrincipal']} has no role yet)",
        f"keyless Blob     {keyless['keylessBlob']} (Azurite, --oauth basic)",
        f"Entra ID         {keyless['authority']} (app {keyless['applicationClientId']}; "
        f"identity {keyless['managedIdentityClientId']}); CA {keyless['caFile']}",
    ]


def _feed(
    local: LocalHost, source: str | None, rate: float | None, projects: list[str], stop: threading.Event
) -> None:
    hub = local.hub
    if hub is None:
        raise DevstackError("--input and --generate feed the local hub; this host reads a real Event Hub")
    if rate is not None:
        messages: Iterator[Message] = generated(projects or ["demo"], count=None, rate=rate)
    else:
        messages, _ = _messages(source, projects, None, 0, [])

    def pump() -> None:
        from devstack.producer import chunks

        size = 1 if rate is not None else 500
        for chunk in chunks(messages, size):
            if stop.is_set():
                return
            hub.send(chunk)

    threading.Thread(target=pump, name="feed", daemon=True).start()


@app.command()
def produce(
    source: Annotated[
        str | None, typer.Argument(help="NDJSON file of signals, one per line; '-' for standard input.")
    ] = None,
    project: Annotated[
        list[str] | None,
        typer.Option(help="Project of lines without a projectId field; of generated signals (repeatable)."),
    ] = None,
    generate: Annotated[int | None, typer.Option(help="Send this many generated signals instead.")] = None,
    rate: Annotated[float, typer.Option(help="Generated signals per second (0: as fast as possible).")] = 0.0,
    name: Annotated[
        list[str] | None, typer.Option("--name", help="Signal names to generate (repeatable).")
    ] = None,
    to: Annotated[str, typer.Option(help="'local' (the local host) or 'eventhub'.")] = "local",
    url: Annotated[str, typer.Option(help="The local host.")] = f"http://localhost:{DEFAULT_PORT}",
    connection: Annotated[
        str | None,
        typer.Option(
            envvar="EventHubConnection", show_envvar=True, help="The Event Hub's connection string."
        ),
    ] = None,
    hub: Annotated[
        str, typer.Option(envvar="EVENTHUB_NAME", help="The hub (unless the connection names it).")
    ] = "signals",
    wait: Annotated[bool, typer.Option(help="Local host: wait until every signal is exported.")] = True,
    check_timeout: CheckTimeout = 15.0,
) -> None:
    """Send signals (NDJSON or generated) to the local host or to an Event Hub, with a progress bar.
    A line's project is its top-level `projectId` field, else --project."""

    def send() -> None:
        from devstack.producer import EventHubTarget, LocalTarget

        names = name or ["pageView", "click", "purchase", "error"]
        messages, total = _messages(source, project or [], generate, rate, names)
        target: Any
        if to == "eventhub":
            if not connection:
                raise DevstackError("--to eventhub needs --connection (or EventHubConnection)")
            target = EventHubTarget(connection, hub, check_timeout=check_timeout)
            target.check()
            where = f"Event Hub {target.where}"
        elif to == "local":
            target = LocalTarget(url)
            target.check()
            where = f"local host {url}"
        else:
            raise DevstackError(f"--to is 'local' or 'eventhub', not {to!r}")
        try:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task(f"sending to {where}", total=total)
                sent = target.send(messages, progress=lambda n: progress.advance(task, n))
                if to == "local" and wait:
                    exporting = progress.add_task("exported by the host", total=sent)
                    done = target.wait(
                        300, on_tick=lambda left: progress.update(exporting, completed=sent - min(left, sent))
                    )
                    if not done:
                        raise DevstackError("the local host did not export every signal within 300 s")
        finally:
            target.close()
        console.print(f"sent {sent} signals to {where}")

    _run(send)


@app.command()
def token(
    project: Annotated[list[str] | None, typer.Option(help="A project to grant (repeatable).")] = None,
    role: Annotated[
        str, typer.Option(help="reader, contributor, owner or admin (every project).")
    ] = "contributor",
    minutes: Annotated[float, typer.Option(help="How long the token lasts.")] = 60.0,
    data_dir: DataDir = DATA,
) -> None:
    """Print a development access token that the local host trusts (Authorization: Bearer ...)."""

    def mint() -> None:
        from devstack.tokens import ROLE_LEVELS, TokenIssuer, roles_for

        if role not in {*ROLE_LEVELS, "admin"}:
            raise DevstackError(f"--role is one of {', '.join([*ROLE_LEVELS, 'admin'])}")
        if role != "admin" and not project:
            raise DevstackError("give --project (repeatable), or --role admin")
        issuer = TokenIssuer.load_or_create(data_dir.resolve() / "devstack" / "dev-token-key.pem")
        print(issuer.mint(roles_for(project or [], role), lifetime=minutes * 60))

    _run(mint)


@app.command()
def storage(
    storage_port: StoragePort = DEFAULT_STORAGE_PORT,
    data_dir: DataDir = DATA,
) -> None:
    """Run only the local storage (Azurite and the ADLS Gen2 emulator) until Ctrl-C: for `func start`
    with local.settings.json (AzureWebJobsStorage=UseDevelopmentStorage=true). Also makes the data
    folder's KEY_ENCRYPTION_KEY and development token key if missing."""

    def serve() -> None:
        from devstack.host import LAKE_ACCOUNT, LocalStorage, key_encryption_key
        from devstack.tokens import TokenIssuer

        key_encryption_key(data_dir.resolve())
        TokenIssuer.load_or_create(data_dir.resolve() / "devstack" / "dev-token-key.pem")

        stopping = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        local = LocalStorage(data_dir.resolve(), storage_port)
        with console.status("starting Azurite and the ADLS Gen2 emulator..."):
            local.start()
        defaults = local.ports["blob"] == DEFAULT_STORAGE_PORT
        try:
            console.print(
                Panel(
                    "\n".join(
                        [
                            f"Azurite          127.0.0.1 ports {local.ports['blob']} (blob), "
                            f"{local.ports['queue']} (queue), {local.ports['table']} (table)"
                            + (": UseDevelopmentStorage=true" if defaults else ""),
                            f"customer Blob    {local.blob_url}",
                            f"customer ADLS    {local.lake.url(LAKE_ACCOUNT)}",
                            *_keyless_lines(local.keyless_status()),
                            f"keys             {local.data_dir}/accounts.json",
                            'func start       KEY_ENCRYPTION_KEY="$(cat '
                            f'{local.data_dir}/key-encryption-key)" func start',
                            "Ctrl-C stops them.",
                        ]
                    ),
                    title="local storage",
                )
            )
            while not stopping.wait(0.5):
                pass
        finally:
            local.stop()

    _run(serve)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
