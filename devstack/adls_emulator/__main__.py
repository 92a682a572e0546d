"""CLI: ``python -m devstack.adls_emulator --port 10004 --location .data/adls``.

Prints one line with the URL once listening, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .emulator import DEFAULT_ACCOUNT, DEFAULT_KEY, AdlsEmulator


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
    args = parser.parse_args(argv)

    accounts = dict(args.account) if args.account else {DEFAULT_ACCOUNT: DEFAULT_KEY}
    try:
        emulator = AdlsEmulator(accounts=accounts, location=args.location, verbose=args.verbose)
        emulator.start(host=args.host, port=args.port)
    except (OSError, ValueError) as exc:
        print(f"adls-emulator: cannot start: {exc}", file=sys.stderr)
        return 1

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    base_url = emulator.url(next(iter(accounts))).rsplit("/", 1)[0]
    print(f"adls-emulator listening on {base_url} accounts={','.join(accounts)}", flush=True)
    while not stopping.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
