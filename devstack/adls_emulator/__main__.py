"""CLI: ``python -m devstack.adls_emulator --port 10004 --location .data/adls``.

``--tls-dir DIR --https-port 10006 --jwks FILE`` adds the HTTPS listener that takes bearer tokens
signed by the keys in ``FILE`` (the local Entra ID's ``jwks.json``); the CA is ``DIR/ca.pem``.

Prints one line with the URL once listening, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devstack.local_tls import LocalTls

from .emulator import DEFAULT_ACCOUNT, DEFAULT_KEY, AdlsEmulator
from .oauth import TrustedKeys


def _account(value: str) -> tuple[str, str]:
    name, sep, key = value.partition(":")
    if not sep or not name or not key:
        raise argparse.ArgumentTypeError("expected NAME:BASE64KEY")
    return name, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.adls_emulator",
        description="Local ADLS Gen2 (dfs + Blob) emulator for the Azure storage SDKs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=10004, help="port (default 10004; 0 picks a free one)")
    parser.add_argument("--location", default=None, help="folder to persist state in (default: memory only)")
    parser.add_argument(
        "--account",
        action="append",
        type=_account,
        default=[],
        metavar="NAME:KEY",
        help=f"account and base64 key; repeatable (default {DEFAULT_ACCOUNT} with the Azurite key)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--tls-dir", default=None, help="folder of the local CA and certificate (made once)")
    parser.add_argument("--https-port", type=int, default=0, help="HTTPS port with --tls-dir (0: a free one)")
    parser.add_argument("--jwks", default=None, help="JWKS file of the token signing keys to trust")
    args = parser.parse_args(argv)

    accounts = dict(args.account) if args.account else {DEFAULT_ACCOUNT: DEFAULT_KEY}
    try:
        tls = LocalTls.ensure(Path(args.tls_dir)).server_context() if args.tls_dir else None
        keys = TrustedKeys(file=Path(args.jwks)) if args.jwks else None
        emulator = AdlsEmulator(
            accounts=accounts, location=args.location, verbose=args.verbose, tls=tls, trusted_keys=keys
        )
        emulator.start(host=args.host, port=args.port, https_port=args.https_port)
    except (OSError, ValueError) as exc:
        print(f"adls-emulator: cannot start: {exc}", file=sys.stderr)
        return 1

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
