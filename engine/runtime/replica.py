"""`provisioner serve`: the API and the console over the shared store, without pollers, consumer
or broker — a second replica, or a read-only deployment next to the engine.

What a person starts here (poll now, provision now, retry) lands in the store's outbox, which the
relay of a `provisioner run` process publishes within a second."""

from __future__ import annotations

import asyncio
from typing import Any

from provisioner.engine.config import Config
from provisioner.engine.runtime.http.app import bind, http_app, serve_until, server, stop_on_signals
from provisioner.engine.runtime.http.metrics import Metrics
from provisioner.engine.runtime.polling import Polling
from provisioner.engine.runtime.wiring import Parts


class Replica:
    def __init__(self, config: Config, parts: Parts | None = None):
        self.config = config
        self.parts = parts or Parts(config)
        self.store = self.parts.store
        self.metrics = Metrics(config, self.store)
        self.poll = Polling(self.parts, self.metrics)

    def wake(self) -> None:
        """Nothing to wake here: the engine's relay looks at the outbox every second."""

    async def ready(self) -> dict[str, bool]:
        try:
            await asyncio.to_thread(self.store.outbox.any_pending)  # a round trip: not on the event loop
        except Exception:  # unreachable or failing: not ready
            return {"store": False}
        return {"store": True}


async def serve_forever(config: Config, parts: Parts | None = None) -> Any:
    sock = bind(config)
    try:
        with stop_on_signals(asyncio.Event()) as stop:
            replica = Replica(config, parts)
            try:
                await serve_until(server(http_app(replica, replica.metrics), sock), sock, stop)
            finally:
                await replica.parts.aclose()
    finally:
        sock.close()
