"""HTTP front end: keep-alive HTTP/1.1 in, responses out; what to answer is the caller's.

The server reads a whole request and hands it, with a request id and whether it came over TLS, to the
``respond`` callable it was given (:func:`.dispatch.respond`, bound to an emulator): that answers a
:class:`Reply`, or None to drop the connection without a response. The same callable can listen twice:
plain HTTP and HTTPS (where clients send bearer tokens).

Every response carries the service's ``Server``, ``x-ms-request-id``, ``x-ms-version`` and ``Date``
headers; HEAD responses carry no body.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import error
from .protocol import Request, Response, http_date, render_error

_SERVER_HEADER = {
    "dfs": "Windows-Azure-HDFS/1.0 Microsoft-HTTPAPI/2.0",
    "blob": "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0",
}
_SMALL_BODY = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """A response and what its headers name: the endpoint that answered (``dfs``, ``blob`` or
    ``control``), the ``x-ms-version`` and the client's request id to echo."""

    response: Response
    api: str
    version: str = ""
    client_request_id: str | None = None


# (request, request id, over TLS) -> the reply, or None to drop the connection without one
Respond = Callable[[Request, str, bool], Reply | None]


class EmulatorServer(ThreadingHTTPServer):
    """Threaded HTTP server that remembers its open connections so stop() can cut them."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        respond: Respond,
        *,
        context: ssl.SSLContext | None = None,
        verbose: bool = False,
    ) -> None:
        self.respond = respond
        self.context = context
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.context is not None:
            # The handshake happens on the first read, in the request's thread, not in the accept loop.
            connection = self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    @property
    def secure(self) -> bool:
        return self.context is not None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-request are routine (timeouts, dropped faults): stay quiet."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Cut keep-alive connections, so a stopped emulator really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's
        # algorithm plus delayed ACKs would stall keep-alive requests ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"adls-emulator: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    # -- request body ------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    # -- response ----------------------------------------------------------
    def _send(self, reply: Reply, request_id: str) -> None:
        response = reply.response
        head = self.command == "HEAD"
        lines = [f"{self.protocol_version} {response.status} {self.responses.get(response.status, ('',))[0]}"]
        headers: list[tuple[str, str]] = [
            ("Server", _SERVER_HEADER.get(reply.api, "adls-emulator")),
            ("x-ms-request-id", request_id),
            ("x-ms-version", reply.version),
            ("Date", http_date(time.time())),
        ]
        if reply.client_request_id:
            headers.append(("x-ms-client-request-id", reply.client_request_id))
        headers += response.headers
        length = len(response.body)
        if head and response.content_length is not None:
            length = response.content_length
        headers.append(("Content-Length", str(length)))
        if self.close_connection:
            headers.append(("Connection", "close"))
        lines += [f"{name}: {value}" for name, value in headers]
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        body = b"" if head else response.body
        if len(body) <= _SMALL_BODY:
            self.wfile.write(head_bytes + body)
        else:
            self.wfile.write(head_bytes)
            self.wfile.write(memoryview(body))
        self.wfile.flush()
        self.log_request(response.status, length)

    def _drop(self) -> None:
        """Close the socket without any response (a reset/aborted connection)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- main flow ---------------------------------------------------------
    def _serve(self) -> None:
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = self.path.partition("?")
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            unreadable = error("InvalidInput", "The request body could not be read.")
            self._send(Reply(render_error(unreadable, "blob", request_id), api="blob"), request_id)
            return
        req = Request(self.command, raw_path, raw_query, list(self.headers.items()), body)
        reply = self.server.respond(req, request_id, self.server.secure)
        if reply is None:
            self._drop()
            return
        self._send(reply, request_id)
