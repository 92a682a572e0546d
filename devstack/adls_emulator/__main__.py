"""CLI: ``python -m devstack.adls_emulator --port 10004 --location .data/adls``.

``--tls-dir DIR --https-port 10006 --jwks FILE`` adds the HTTPS listener that takes bearer tokens
signed by the keys in ``FILE`` (the local Entra ID's ``jwks.json``); the CA is ``DIR/ca.pem``.

Prints one line with the URL once listening, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from devstack.local_tls import LocalTls

from .emulator import DEFAULT_ACCOUNT, DEFAULT_KEY, AdlsEmulator
from .oauth import TrustedKeys

PROG = "python -m devstack.adls_emulator"
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")


def _accounts(values: list[str] | None) -> list[str] | None:
    """Each `--account` is NAME:BASE64KEY."""
    for value in values or []:
        name, sep, key = value.partition(":")
        if not sep or not name or not key:
            raise typer.BadParameter("expected NAME:BASE64KEY")
    return values


@app.command(help="Local ADLS Gen2 (dfs + Blob) emulator for the Azure storage SDKs.")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 10004,
    location: Annotated[
        str | None, typer.Option(help="Folder to persist state in (default: memory only).")
    ] = None,
    account: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME:KEY",
            callback=_accounts,
            help=f"Account and base64 key; repeatable (default {DEFAULT_ACCOUNT} with the Azurite key).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log every request to stderr.")] = False,
    tls_dir: Annotated[
        str | None, typer.Option(help="Folder of the local CA and certificate (made once).")
    ] = None,
    https_port: Annotated[int, typer.Option(help="HTTPS port with --tls-dir (0: a free one).")] = 0,
    jwks: Annotated[str | None, typer.Option(help="JWKS file of the token signing keys to trust.")] = None,
) -> None:
    accounts = dict(value.split(":", 1) for value in account) if account else {DEFAULT_ACCOUNT: DEFAULT_KEY}
    try:
        tls = LocalTls.ensure(Path(tls_dir)).server_context() if tls_dir else None
        keys = TrustedKeys(file=Path(jwks)) if jwks else None
        emulator = AdlsEmulator(
            accounts=accounts, location=location, verbose=verbose, tls=tls, trusted_keys=keys
        )
        emulator.start(host=host, port=port, https_port=https_port)
    except (OSError, ValueError) as exc:
        print(f"adls-emulator: cannot start: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    base_url = emulator.url(next(iter(accounts))).rsplit("/", 1)[0]
    secure = f" and {emulator.url(next(iter(accounts)), https=True).rsplit('/', 1)[0]}" if tls else ""
    print(f"adls-emulator listening on {base_url}{secure} accounts={','.join(accounts)}", flush=True)
    while not stopping.wait(0.5):
        pass
    emulator.stop()


if __name__ == "__main__":
    app(prog_name=PROG)
