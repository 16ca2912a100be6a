"""`provisioner run`: the Runtime with its scheduled jobs and webhook server, until SIGTERM or SIGINT.

systemd, Docker and Kubernetes stop a service with SIGTERM, a terminal with SIGINT: both stop the
same graceful way — jobs stop, the webhook server closes, in-flight work is recorded or handed back
(its events stay unconfirmed and are re-published), the relay lease is released and the embedded
broker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from provisioner.engine.config import Config
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.scheduler import build_scheduler
from provisioner.engine.runtime.webhooks import webhook_app

log = logging.getLogger("provisioner.engine")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the engine decides when the server stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_forever(config: Config, stop: asyncio.Event | None = None) -> None:
    """Relay and consumer, and the scheduled jobs (polls, due deferred actions, reconciliation),
    until `stop` is set or a stop signal arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    def requested(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s: stopping", sig.name)
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, requested, sig)
    try:
        async with Runtime(config) as runtime:
            scheduler = build_scheduler(runtime)
            server = _webhook_server(runtime)
            serving = asyncio.create_task(server.serve()) if server else None
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({stopping, *([serving] if serving else [])}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                scheduler.shutdown(wait=False)
                if server and serving:
                    server.should_exit = True
                    await serving
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _webhook_server(runtime: Runtime) -> _Server | None:
    """A uvicorn server for the webhook endpoint, when any source takes webhooks."""
    if not any(s.settings().get("webhook_secret") for s in runtime.config.sources):
        return None
    host, _, port = runtime.config.engine.listen.rpartition(":")
    log.info("webhooks: listening on http://%s:%s/webhooks/{source}", host or "0.0.0.0", port)
    return _Server(
        uvicorn.Config(
            webhook_app(runtime), host=host or "0.0.0.0", port=int(port), log_level="warning", lifespan="off"
        )
    )
