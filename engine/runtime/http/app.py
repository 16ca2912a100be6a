"""The one HTTP server of `provisioner run` and `provisioner serve`: health, readiness, metrics,
the API, the console and the webhooks, on `engine.listen`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from provisioner.engine.config import Config
from provisioner.engine.runtime.bodies import guarded
from provisioner.engine.runtime.http.api import api_app
from provisioner.engine.runtime.http.auth import Auth, check_listen
from provisioner.engine.runtime.http.console import console_routes
from provisioner.engine.runtime.http.headers import secured
from provisioner.engine.runtime.http.mcp_mount import mcp_route
from provisioner.engine.runtime.http.metrics import Metrics
from provisioner.engine.runtime.protocol import Served
from provisioner.engine.runtime.webhooks import webhook_routes

log = logging.getLogger("provisioner.http")


def http_app(served: Served, metrics: Metrics) -> Starlette:
    auth = Auth(served.config, served.store.sessions)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            checks = await served.ready()
        except Exception as exc:  # the store is down: not ready, and say which part
            checks = {"store": False}
            log.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse({"ready": all(checks.values()), **checks}, status_code=200 if all(checks.values()) else 503)

    async def scrape(request: Request) -> Response:
        if auth.metrics_auth and not auth.scrape_ok(request):
            return PlainTextResponse("a valid bearer token is required", status_code=401)
        body = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    def api_refusal(request: Request) -> tuple[int, str] | None:
        refused = auth.refusal(request)
        principal = auth.bearer(request) if refused is None else None
        if principal is not None and principal.agent_only:
            return 403, f"{principal.shown} is an agent's token: it may use /mcp only"
        return refused

    mcp, lifespan = mcp_route(served, auth)

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", scrape),
        # The token is checked on the headers, before any body is read (and before FastAPI parses one).
        Mount("/api/v1", app=guarded(api_app(served, auth), api_refusal)),
        mcp,
        *webhook_routes(served),
        *console_routes(served, auth),
    ]
    return Starlette(routes=routes, middleware=[Middleware(secured)], lifespan=lifespan)


def bind(config: Config) -> socket.socket:
    """The listening socket, bound before anything else starts: a port in use or a non-loopback
    address without api.token stops the engine at once with one clear line (ValueError)."""
    host, port = check_listen(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {config.engine.listen}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The engine owns SIGTERM/SIGINT (stop_on_signals): uvicorn re-raising the signal
        # after its own shutdown would kill the process before the broker and store are closed.
        yield


def server(app: Starlette, sock: socket.socket) -> uvicorn.Server:
    host, port = sock.getsockname()[:2]
    log.info("listening on http://%s:%s (console /, API /api/v1, MCP /mcp, metrics /metrics)", host, port)
    # The lifespan runs the MCP session manager for as long as the server serves.
    return _Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[asyncio.Event]:
    """SIGTERM (systemd, Docker, Kubernetes) and SIGINT (a terminal) both set `stop`: the caller
    then closes everything in order. Installed before anything starts, so a signal during start-up
    is not lost."""
    loop = asyncio.get_running_loop()

    def requested(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s: stopping", sig.name)
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, requested, sig)
    try:
        yield stop
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def serve_until(http: uvicorn.Server, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve on `sock` until `stop` is set (or the server ends by itself), then close the server."""
    serving = asyncio.create_task(http.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        http.should_exit = True
        await serving
