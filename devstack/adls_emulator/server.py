"""HTTP front end: keep-alive HTTP/1.1, routing, faults, auth, error bodies.

Request flow: read the whole request -> control endpoint? -> classify (dfs or
Blob, logical operation) -> faults (latency, error, dropped connection) ->
account lookup -> authentication and authorization (SharedKey, bearer token
and roles, or SAS: :mod:`.security`) -> operation -> response -> request log.

The same app can listen twice: plain HTTP (SharedKey and SAS) and HTTPS (also
bearer tokens, which clients only send over TLS).

Error bodies follow each endpoint's format: dfs answers JSON
``{"error":{"code":..,"message":..}}``, Blob answers XML ``<Error>``; both send
``x-ms-error-code``, ``x-ms-request-id`` and ``x-ms-version``; HEAD responses
carry no body.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from . import blob, control, dfs
from .errors import StorageError, error, for_blob
from .faults import RequestRecord
from .protocol import Request, Response, http_date, iso_time_now
from .routing import classify
from .security import authorize, user_delegation_key

if TYPE_CHECKING:
    from .emulator import AdlsEmulator

_SERVER_HEADER = {
    "dfs": "Windows-Azure-HDFS/1.0 Microsoft-HTTPAPI/2.0",
    "blob": "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0",
}
_SMALL_BODY = 64 * 1024


def render_error(err: StorageError, api: str, request_id: str) -> Response:
    """The service's error response for ``err`` on the given endpoint."""
    headers = [("x-ms-error-code", err.code), *err.headers.items()]
    if err.status == 304 or not err.message:
        return Response(err.status, headers)
    message = f"{err.message}\nRequestId:{request_id}\nTime:{iso_time_now()}"
    if api == "dfs":
        body = json.dumps({"error": {"code": err.code, "message": message}}).encode("utf-8")
        return Response(err.status, [("Content-Type", "application/json; charset=utf-8"), *headers], body)
    detail = ""
    if err.detail:
        detail = f"<AuthenticationErrorDetail>{escape(err.detail)}</AuthenticationErrorDetail>"
    xml = (
        '\ufeff<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{escape(err.code)}</Code><Message>{escape(message)}</Message>{detail}</Error>"
    )
    return Response(err.status, [("Content-Type", "application/xml"), *headers], xml.encode("utf-8"))


class EmulatorServer(ThreadingHTTPServer):
    """Threaded HTTP server that remembers its open connections so stop() can cut them."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], app: AdlsEmulator, context: ssl.SSLContext | None = None
    ) -> None:
        self.app = app
        self.context = context
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
        if self.server.app.verbose:
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
    def _send(
        self, response: Response, *, api: str, request_id: str, version: str, client_request_id: str | None
    ) -> None:
        head = self.command == "HEAD"
        lines = [f"{self.protocol_version} {response.status} {self.responses.get(response.status, ('',))[0]}"]
        headers: list[tuple[str, str]] = [
            ("Server", _SERVER_HEADER.get(api, "adls-emulator")),
            ("x-ms-request-id", request_id),
            ("x-ms-version", version),
            ("Date", http_date(time.time())),
        ]
        if client_request_id:
            headers.append(("x-ms-client-request-id", client_request_id))
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
        app = self.server.app
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = self.path.partition("?")
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            unreadable = error("InvalidInput", "The request body could not be read.")
            self._send(
                render_error(unreadable, "blob", request_id),
                api="blob", request_id=request_id, version="", client_request_id=None,
            )
            return

        if raw_path == "/__emulator" or raw_path.startswith("/__emulator/"):
            self._send(
                control.handle(app, self.command, raw_path, body),
                api="control", request_id=request_id, version="", client_request_id=None,
            )
            return

        req = Request(self.command, raw_path, raw_query, list(self.headers.items()), body)
        req.api, req.operation = classify(req)
        outcome = app.faults.match(req.operation, req.account, req.resource_path)
        if outcome.latency > 0:
            time.sleep(outcome.latency)
        fault = outcome.fault
        if fault is not None and fault.drop_connection:
            app.log.append(RequestRecord(req.method, req.operation, req.account, req.resource_path, 0))
            self._drop()
            return

        if fault is not None and fault.status is not None:
            injected = StorageError(fault.status, fault.code, fault.message)
            response = render_error(injected, req.api, request_id)
        else:
            response = self._execute(app, req, request_id)
        # Log before answering: once a client has its response, the record is visible.
        record = RequestRecord(req.method, req.operation, req.account, req.resource_path, response.status)
        app.log.append(record)
        self._send(
            response,
            api=req.api,
            request_id=request_id,
            version=req.version,
            client_request_id=req.header("x-ms-client-request-id"),
        )

    def _execute(self, app: AdlsEmulator, req: Request, request_id: str) -> Response:
        try:
            if not req.account:
                raise error("InvalidUri")
            caller = authorize(app, req, secure=self.server.secure)
            if req.operation == "userDelegationKey":
                return user_delegation_key(app, req, caller)
            if req.api == "dfs":
                return dfs.handle(app.store, req)
            return blob.handle(app.store, req, self.headers.get("Host") or "127.0.0.1")
        except StorageError as err:
            return render_error(for_blob(err) if req.api == "blob" else err, req.api, request_id)
        except Exception:  # a bug in the emulator: answer like the service's 500, keep serving
            traceback.print_exc(file=sys.stderr)
            internal = StorageError(
                500, "InternalError", "Server encountered an internal error. Please retry the request."
            )
            return render_error(internal, req.api, request_id)
