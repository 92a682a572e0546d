"""The local host's development routes, served beside the management API (never part of it):

- `POST /_local/signals`: an NDJSON body, one signal per line, onto the local hub. Query `project`:
  the project of lines without a `projectId` field; `partitionKey`: put them all on one partition.
  Answers 202 with how many were accepted and their sequence numbers per partition.
- `GET /_local/status`: the source's partitions (received, delivered, waiting, next sequence number),
  the timer, the replay queue, the storage.
- `GET /admin/host/status`: `{"state": "Running", ...}`, like the Functions host's.
- `GET /admin/functions`: the registered functions and their triggers.
- `GET`/`POST /_local/signin`: the development sign-in of the management pane (`devstack.devsignin`).
- `POST /admin/functions/{name}`: like the Functions host's admin API. The timer function runs now
  (202 once it ran); for the queue function, `{"input": "..."}` is put on its queue.

They take no token: the host listens on 127.0.0.1 unless told otherwise (`--bind`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from devstack.devsignin import signin_router
from devstack.errors import DevstackError
from devstack.functions import HTTP, QUEUE, TIMER, registered_functions
from devstack.queue_runner import encode
from devstack.sources import LocalHub, read_ndjson
from devstack.tokens import TokenIssuer
from devstack.triggers import QueuePoller

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEV_PREFIXES = ("/_local/", "/admin/")
MAX_BODY = 64 * 1024 * 1024


def dispatcher(api: ASGIApp, dev: ASGIApp) -> ASGIApp:
    """One ASGI app: the development routes by prefix, everything else to the management API."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        target = dev if scope.get("type") == "http" and path.startswith(DEV_PREFIXES) else api
        await target(scope, receive, send)

    return app


class DevHost(Protocol):
    """What the development routes use of the local host (`devstack.host.LocalHost`)."""

    @property
    def url(self) -> str: ...
    @property
    def started(self) -> bool: ...
    @property
    def settings(self) -> Mapping[str, str]: ...
    @property
    def issuer(self) -> TokenIssuer | None: ...
    @property
    def hub(self) -> LocalHub | None: ...
    @property
    def queues(self) -> Mapping[str, QueuePoller]: ...
    def status(self) -> dict[str, Any]: ...
    def run_timer_now(self) -> None:
        """Runs the timer function now; DevstackError when the host is not running."""


def dev_app(host: DevHost) -> FastAPI:
    app = FastAPI(title="signals-export local host", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(signin_router(lambda: host.settings, lambda: host.issuer))

    @app.post("/_local/signals", status_code=202)
    async def post_signals(
        request: Request, project: str | None = None, partitionKey: str | None = None
    ) -> Any:
        return await _send_signals(host.hub, await request.body(), project, partitionKey)

    @app.get("/_local/status")
    async def local_status() -> Any:
        return await run_in_threadpool(host.status)

    @app.get("/admin/host/status")
    async def host_status() -> Any:
        return {"state": "Running" if host.started else "Stopped", "url": host.url}

    @app.get("/admin/functions")
    async def functions() -> Any:
        return [{"name": f.name, "trigger": f.trigger} for f in registered_functions().values()]

    @app.post("/admin/functions/{name}", status_code=202)
    async def run_function(name: str, request: Request) -> Any:
        function = registered_functions().get(name)
        if function is None:
            raise HTTPException(404, f"no function named {name!r}")
        if function.kind == TIMER:
            return await _run_timer(host, name)
        if function.kind == QUEUE:
            queue = host.queues.get(str(function.trigger.get("queueName")))
            return await _queue_input(queue, name, request)
        if function.kind == HTTP:
            raise HTTPException(400, f"{name} is an HTTP function: call it under /api")
        raise HTTPException(
            400, f"{name} is triggered by {function.kind}: send it events instead (POST /_local/signals)"
        )

    return app


async def _send_signals(hub: LocalHub | None, body: bytes, project: str | None, key: str | None) -> Any:
    """NDJSON lines onto the local hub: how many, and the sequence numbers they got per partition."""
    if hub is None:
        raise HTTPException(
            409,
            "This host reads a real Event Hub (EventHubConnection is set): send signals to the hub "
            "(`python -m devstack produce --to eventhub`).",
        )
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"send at most {MAX_BODY} bytes per request")
    events = await run_in_threadpool(
        lambda: hub.send(read_ndjson(body.splitlines(keepends=True), project), key)
    )
    spans: dict[str, list[int]] = {}
    for pid, event in events:
        span = spans.setdefault(pid, [event.sequence, event.sequence])
        span[1] = event.sequence
    return {"accepted": len(events), "sequenceNumbers": spans}


async def _run_timer(host: DevHost, name: str) -> Any:
    """The timer function, now (202 once it ran; 500 with the error it raised)."""
    try:
        await run_in_threadpool(host.run_timer_now)
    except DevstackError as error:
        raise HTTPException(503, str(error)) from None
    except Exception as error:  # noqa: BLE001 - the function's own failure, reported to the caller
        return JSONResponse(
            {"function": name, "ran": True, "error": f"{type(error).__name__}: {error}"}, status_code=500
        )
    return {"function": name, "ran": True}


async def _queue_input(queue: QueuePoller | None, name: str, request: Request) -> Any:
    """`{"input": "..."}` onto the queue function's queue, encoded as the trigger decodes it."""
    try:
        document = await request.json()
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("input"), str):
        raise HTTPException(400, 'send {"input": "<message text>"}')
    if queue is None:
        raise HTTPException(503, "the host is not running")
    message = encode(document["input"].encode(), queue.runner.encoding)
    await run_in_threadpool(lambda: queue.runner.queue.send_message(message))
    queue.wake()
    return {"function": name, "queued": True}
