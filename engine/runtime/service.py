"""`provisioner run`: the Runtime with its scheduled jobs and its HTTP server (health, metrics, API,
console, webhooks on engine.listen), until SIGTERM or SIGINT.

systemd, Docker and Kubernetes stop a service with SIGTERM, a terminal with SIGINT: both stop the
same graceful way — jobs stop, the HTTP server closes, in-flight work is recorded or handed back
(its events stay unconfirmed and are re-published), the relay lease is released and the embedded
broker stops.
"""

from __future__ import annotations

import asyncio

from provisioner.engine.config import Config
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.http.app import bind, http_app, serve_until, server, stop_on_signals
from provisioner.engine.runtime.scheduler import build_scheduler


async def run_forever(config: Config, stop: asyncio.Event | None = None) -> None:
    """Relay and consumer, and the scheduled jobs (polls, due deferred actions, reconciliation),
    until `stop` is set or a stop signal arrives."""
    sock = bind(config)  # before the broker starts: a port in use stops us with one clear line
    try:
        with stop_on_signals(stop or asyncio.Event()) as stopping:
            async with Runtime(config) as runtime:
                scheduler = build_scheduler(runtime)
                try:
                    await serve_until(server(http_app(runtime, runtime.metrics), sock), sock, stopping)
                finally:
                    scheduler.shutdown(wait=False)
    finally:
        sock.close()
