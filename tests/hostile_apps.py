"""Hostile apps for the security tests, each a real HTTP server: one that never answers in time,
one that answers without end (300 MB), one whose totalResults promises pages forever, and one
that records what reached it (to prove credentials never did)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": False, "maxResults": 100},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
    "authenticationSchemes": [],
}


@dataclass
class Seen:
    """What reached a hostile app: (method, path, Authorization header)."""

    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # ends the slow app's waits

    def record(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path, request.headers.get("authorization")))


def lying_scim(seen: Seen) -> Starlette:
    """One user per page, and a totalResults that always says a billion."""

    async def handle(request: Request) -> Response:
        seen.record(request)
        if request.url.path.endswith("ServiceProviderConfig"):
            return JSONResponse(CONFIG)
        start = int(request.query_params.get("startIndex", "1"))
        user = {"id": f"u{start}", "userName": f"user{start}", "active": True}
        body = {"schemas": [LIST], "totalResults": 10**9, "startIndex": start, "itemsPerPage": 1, "Resources": [user]}
        return JSONResponse(body)

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])


def slow_scim(seen: Seen, seconds: float = 30.0) -> Starlette:
    """Answers nothing for `seconds` (or until released)."""

    async def handle(request: Request) -> Response:
        seen.record(request)
        waited = 0.0
        while waited < seconds and not seen.release.is_set():
            await asyncio.sleep(0.05)
            waited += 0.05
        return JSONResponse(CONFIG)

    return Starlette(routes=[Route("/{path:path}", handle)])


def huge_scim(seen: Seen, megabytes: int = 300) -> Starlette:
    """Every answer is `megabytes` of JSON-looking bytes, streamed (no Content-Length)."""

    async def body() -> AsyncIterator[bytes]:
        yield b'{"Resources": ["'
        chunk = b"x" * (1 << 20)
        for _ in range(megabytes):
            if seen.release.is_set():
                return
            yield chunk
        yield b'"]}'

    async def handle(request: Request) -> Response:
        seen.record(request)
        return StreamingResponse(body(), media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", handle)])


def paging_app(seen: Seen, next_url: Any) -> Starlette:
    """A listing of one record per page whose `next` is `next_url(request)` (None: the last page)."""

    async def handle(request: Request) -> Response:
        seen.record(request)
        following = next_url(request)
        headers = {"Link": f'<{following}>; rel="next"'} if following else {}
        return JSONResponse({"items": [{"id": len(seen.requests)}], "next": following}, headers=headers)

    return Starlette(routes=[Route("/{path:path}", handle)])
