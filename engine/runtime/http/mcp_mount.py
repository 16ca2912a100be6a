"""`/mcp` on `engine.listen`: the MCP server (streamable HTTP, stateless JSON answers) behind the
API's own bearer check. Each request's token is its caller, so nothing rides on a session id."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from provisioner.engine.runtime.bodies import guarded
from provisioner.engine.runtime.http.auth import Auth
from provisioner.engine.runtime.mcp import build_server, caller_of, refusal
from provisioner.engine.runtime.mcp.answers import CALLER_KEY
from provisioner.engine.runtime.protocol import Served

PATH = "/mcp"


class _Endpoint:
    """An ASGI app as a route's endpoint (Starlette calls a plain function with a Request instead)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def mcp_route(
    served: Served, auth: Auth
) -> tuple[Route, Callable[[Any], contextlib.AbstractAsyncContextManager[None]]]:
    """The route, and the lifespan its session manager runs in while the server serves."""
    server = build_server(served.parts)
    host = served.config.engine.listen.rpartition(":")[0] or "0.0.0.0"
    # Stateless: every request is authenticated on its own token, and nothing rides on a session id
    # that another token's holder could present.
    server.streamable_http_app(streamable_http_path=PATH, stateless_http=True, json_response=True, host=host)
    manager = server.session_manager

    def admit(request: Request) -> tuple[int, str] | None:
        refused = auth.refusal(request)
        if refused is not None:
            return refused
        principal = auth.bearer(request)
        assert principal is not None  # admitted by refusal() above
        caller = caller_of(served.config, principal.name, principal.operator)
        if caller is None:
            return 403, refusal(principal.name)
        setattr(request.state, CALLER_KEY, caller)
        return None

    @contextlib.asynccontextmanager
    async def running(app: Any) -> AsyncIterator[None]:
        async with manager.run():
            yield

    endpoint = _Endpoint(guarded(manager.handle_request, admit))
    return Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"]), running
