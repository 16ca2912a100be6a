"""`provisioner run`: the Runtime with its scheduled jobs and its HTTP server (health, metrics, API,
console, webhooks on engine.listen), until SIGTERM or SIGINT.

systemd, Docker and Kubernetes stop a service with SIGTERM, a terminal with SIGINT: both stop the
same graceful way — jobs stop, the HTTP server closes, in-flight work is recorded or handed back
(its events stay unconfirmed and are re-published), the relay lease is released and the embedded
broker stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from provisioner.engine.config import Config
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.http import bind, http_app, server
from provisioner.engine.runtime.scheduler import build_scheduler

log = logging.getLogger("provisioner.engine")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_forever(config: Config, stop: asyncio.Event | None = None) -> None:
    """Relay and consumer, and the scheduled jobs (polls, due deferred actions, reconciliation),
    until `stop` is set or a stop signal arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    def requested(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s: stopping", sig.name)
        stop.set()

    sock = bind(config)  # before the broker starts: a port in use stops us with one clear line
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, requested, sig)
    try:
        async with Runtime(config) as runtime:
            scheduler = build_scheduler(runtime)
            http = server(http_app(runtime, runtime.metrics), sock)
            serving = asyncio.create_task(http.serve(sockets=[sock]))
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                scheduler.shutdown(wait=False)
                http.should_exit = True
                await serving
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        sock.close()
