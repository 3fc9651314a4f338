"""Bound request bodies where they arrive, before Django reads a byte of them.

Django's ASGI handler reads the whole request body (into a temporary file) before any
Django middleware runs, so a limit inside Django comes too late: a client could stream
gigabytes to the server first. This pure-ASGI middleware sits in front of Django: it
refuses a declared oversized body from its Content-Length without reading it, and counts
the bytes of a chunked (or undeclared) body as they arrive, answering 413 the moment the
count passes the limit. The server (Uvicorn) streams bodies to the application in small
pieces and pauses reading while they are not consumed, so nothing piles up in memory.
"""

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from emotions.services.files import human_size

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Room for the multipart envelope and form fields around the file itself.
ENVELOPE_BYTES = 1024 * 1024


def body_limit() -> int:
    """The most bytes a request body may have: the upload limit plus its envelope."""
    return settings.MAX_UPLOAD_BYTES + ENVELOPE_BYTES


def too_large_detail(size: int | None) -> str:
    """The message a user reads; `size` is None when the body declared no length."""
    most = human_size(settings.MAX_UPLOAD_BYTES)
    if size is None:
        return f"This upload is too large; the limit is {most}."
    return f"This upload is {human_size(size)}; the limit is {most}."


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The client may still be sending: closing is how it learns to stop, and the
        # server never reads (or stores) the rest.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; -1 when it is present but not a number."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class BodyLimitMiddleware:
    """Wraps an ASGI application; HTTP requests over the body limit get a 413."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int] = body_limit) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = _declared_length(scope)
        if declared == -1:
            await _answer(send, 400, "Invalid Content-Length header.")
            return
        if declared is not None and declared > limit:
            await _answer(send, 413, too_large_detail(declared))
            return

        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _answer(send, 413, too_large_detail(None))
                    # To the application the client went away: Django drops the request.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the client has its 413; the application's answer goes nowhere
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
