"""The request body limit: a body over MAX_BODY_BYTES is refused with 413 while the route reads it,
so that the API's error handlers answer it in the Azure shape (authentication still comes first)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024  # a definition with 1000 signal names of 256 characters fits well within
TOO_LARGE = f"The request body must be at most {MAX_BODY_BYTES} bytes."


def too_large() -> HTTPException:
    return HTTPException(413, TOO_LARGE)


class BodyLimit:
    """ASGI middleware counting the body's bytes as they are received."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large()
            return message

        await self.app(scope, limited, send)
