"""One poll of a source at a time per process, timed for the metrics: shared by the engine and
the API-only replica, so a webhook, a schedule and a person pressing "poll now" never diff
against the same snapshot twice."""

from __future__ import annotations

import asyncio
import time

from provisioner.engine.kit import tracing
from provisioner.engine.runtime.http.metrics import Metrics
from provisioner.engine.runtime.poller import Diff
from provisioner.engine.runtime.usecases.identity import IdentityRules
from provisioner.engine.runtime.usecases.ingest import ingest
from provisioner.engine.runtime.wiring import Parts


class Polling:
    def __init__(self, parts: Parts, metrics: Metrics):
        # Every process that starts changes (the engine, the API-only replica) has one: traces are
        # set up here, once per process (the first config's `telemetry:` holds).
        tracing.install(**parts.config.telemetry.model_dump())
        self.parts = parts
        self.metrics = metrics
        self._locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, source_name: str, only: list[str] | None = None) -> Diff:
        async with self._locks.setdefault(source_name, asyncio.Lock()):
            keys = next((s.correlate for s in self.parts.config.sources if s.name == source_name), [])
            started = time.perf_counter()
            identity = IdentityRules.of(self.parts.config)
            source, store = self.parts.sources[source_name], self.parts.store
            # A new trace per poll (or webhook): each change it finds carries it on (contracts/events.py).
            about = {"provisioner.source": source_name, "provisioner.webhook": bool(only)}
            with tracing.root(f"poll {source_name}", about) as span:
                result = await ingest(source, store, self.parts.gate, only, keys, identity=identity)
                span.set_attribute("provisioner.events", result.event_count)
            self.metrics.record_poll(source_name, time.perf_counter() - started, result.event_types())
        return result
