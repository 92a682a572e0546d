"""A small threaded HTTP(S) server for the local identity stand-ins, around one handler function.

The handler takes a `Call` (method, path, query, headers, form or body) and returns a `Reply`; the
server does the sockets, TLS and keep-alive. `port=0` picks a free port.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def form(self) -> dict[str, str]:
        """An `application/x-www-form-urlencoded` body; a repeated field keeps its last value."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, [("Content-Type", "application/json; charset=utf-8"), *(headers or [])])


Handler = Callable[[Call], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Handler, context: ssl.SSLContext | None) -> None:
        self.handler = handler
        self.context = context
        super().__init__(address, _RequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.context is not None:
            # The handshake runs in the request's own thread (on first read), not in the accept loop.
            connection = self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            return  # clients that hang up, or that do not trust the local CA
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            self._reply(Reply.json(413, {"error": "request body too large"}))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        call = Call(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            reply = self.server.handler(call)
        except Exception:  # noqa: BLE001 - a bug in a stand-in: answer 500 and keep serving
            traceback.print_exc(file=sys.stderr)
            reply = Reply.json(500, {"error": "server_error", "error_description": "internal error"})
        self._reply(reply)

    def _reply(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class LocalServer:
    """Serves `handler` on `host:port` in background threads, over TLS when `context` is given."""

    def __init__(self, handler: Handler, *, context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._context = context
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> LocalServer:
        if self._server is not None:
            raise RuntimeError("already running")
        server = _Server((host, port), self._handler, self._context)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"
