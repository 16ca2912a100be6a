"""Request bodies read in a stream under a limit, so a sender can never make us hold more than
the limit in memory: a declared Content-Length over it is refused before one byte is read, and a
chunked body is refused as soon as it passes it.

`guarded` wraps an ASGI app (the API) so the bearer token is checked before the body is read:
a 50 MB body without a token costs us the headers only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_BODY = 1 << 20  # the API takes small JSON commands
FORM_BODY = 16 << 10  # the console's forms hold a token, a CSRF token and a few names
WEBHOOK_BODY = 1 << 20


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes")


def declared_length(headers: Any) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


async def read_bounded(request: Request, limit: int) -> bytes:
    """The body, or BodyTooLarge (a 413) as soon as it is known to pass `limit` bytes;
    ClientDisconnect when the sender goes away first."""
    length = declared_length(request.headers)
    if length is not None and length > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def guarded(app: ASGIApp, admit: Callable[[Request], tuple[int, str] | None], limit: int = API_BODY) -> ASGIApp:
    """`app` behind `admit` (None to let a request in, else the status and reason to refuse it),
    run on the headers alone; the body of an admitted request is then read under `limit` and
    handed on whole."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request = Request(scope, receive)
        refused = admit(request)
        if refused is not None:
            status, detail = refused
            await _answer(send, status, detail, {"WWW-Authenticate": "Bearer"} if status == 401 else None)
            return
        try:
            body = await read_bounded(request, limit)
        except BodyTooLarge as exc:
            await _answer(send, 413, str(exc.detail))
            return
        except ClientDisconnect:  # the sender went away: nobody to answer, nothing to log
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # the disconnect, when the client goes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return wrapped
