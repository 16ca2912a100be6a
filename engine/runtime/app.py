"""The running engine: pollers → outbox → relay → bus (Kafka, or in memory) → consumer → writers.

`Runtime` is an async context manager; `sync --once` and `run` (runtime/service.py) are built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.ports import FixedClock, system_clock
from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.kit import tracing
from provisioner.engine.kit.process import collect_rarely, freeze_startup, new_owner
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.apply import BatchReport
from provisioner.engine.runtime.fleet import Fleet, Vitals, claimer
from provisioner.engine.runtime.http.metrics import Metrics
from provisioner.engine.runtime.kafka_bus import KafkaBus
from provisioner.engine.runtime.offsets import Offsets
from provisioner.engine.runtime.operations import retry_events
from provisioner.engine.runtime.pipeline import Pipeline
from provisioner.engine.runtime.poller import Diff
from provisioner.engine.runtime.polling import Polling
from provisioner.engine.runtime.ports import Batch, Bus
from provisioner.engine.runtime.rebalance import Rebalance
from provisioner.engine.runtime.relay import Relay
from provisioner.engine.runtime.usecases.fire_due import fire_due
from provisioner.engine.runtime.wiring import Parts

log = logging.getLogger("provisioner.engine")
COUNT_EVERY = 1.0  # seconds between counts of the events in flight while a command waits for them


class Runtime:
    """Owns the bus connection, the outbox relay and the consumer for one engine process."""

    def __init__(
        self,
        config: Config,
        *,
        consume: bool = True,
        parts: Parts | None = None,
        one_shot: bool = False,
        bus: Bus | None = None,
    ):
        self.config = config
        # Kafka unless a bus is given (the in-memory one of the fast tests). `one_shot` (`sync
        # --once`) takes partitions by assignment and never joins the consumer group.
        self.bus: Bus = bus or KafkaBus(config.kafka, batch_size=config.engine.batch_size, one_shot=one_shot)
        # Who holds a lease: host, pid and start time, so a restart can tell its crashed predecessor is gone.
        self.owner = new_owner()
        self.parts = parts or Parts(config)
        self.store = self.parts.store
        self.consume = consume
        self.totals = BatchReport()
        self.vitals = Vitals()
        self.metrics = Metrics(config, self.store)
        self.pipeline = Pipeline(
            self.parts.applier,
            self.store,
            concurrency=config.engine.concurrency,
            # Two fetched batches in flight, recorded half a batch at a time: fewer, larger
            # transactions kept a 100,000-event drain from waiting on the store (7.2 s -> 5.6 s).
            max_pending=2 * config.engine.batch_size,
            flush_size=max(1, config.engine.batch_size // 2),
            on_flush=self._flushed,
            on_recorded=self._recorded,
            claim=claimer(self.store, self.owner, config.engine.claim_seconds, self.vitals),
            before_record=self._write_back if self.parts.writebacks else None,
            approved=self.parts.approved if self.parts.policies.gated else None,
        )
        self.offsets = Offsets()
        self.fleet = Fleet(self.store, self.owner, config.engine, self.pipeline, self.offsets, self.vitals)
        self.metrics.watch(self.fleet)
        self._started = False
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._relay: Relay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._polling = Polling(self.parts, self.metrics)

    async def __aenter__(self) -> Runtime:
        handler = self._handle if self.consume else None
        # Lost partitions: stop starting their work before the new owner starts (rebalance.py).
        await self.bus.start(handler, Rebalance(self.fleet, self.config.engine.revoke_wait))
        self._started = True
        self._relay = Relay(self.store, self.bus.publisher(), self.owner, self._wake, self.vitals)
        self._relay_task = asyncio.create_task(self._relay.run(lambda: self._stopping), name="outbox-relay")
        self._beat_task = asyncio.create_task(self.fleet.run(lambda: self._stopping), name="engine-heartbeat")
        collect_rarely()
        freeze_startup()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._stopping = True
        self._wake.set()
        for task in (self._relay_task, self._beat_task):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._relay:
            await self._relay.aclose()
        await self.bus.stop_consuming()  # no new batches from here on
        # The last flush may publish dead letters, so the bus closes after it; what was not
        # recorded stays unconfirmed and is re-published.
        await self.pipeline.aclose()
        await self.fleet.aclose()
        await self.bus.aclose()
        await self.parts.aclose()

    async def _handle(self, batch: Batch) -> None:
        events, ids = [], list[str | None]()
        for record in batch.records:
            try:
                event = WorkerEvent.model_validate_json(record.value or b"")
                events.append(tracing.received(event, getattr(record, "headers", None), record.topic))
                ids.append(events[-1].id)
            except ValueError as exc:
                log.error("dropping a message that is not a WorkerEvent: %s", exc)
                ids.append(None)
        records, consumer = batch.records, batch.consumer  # its assignment moves in rebalances
        owned = consumer.assignment() - self.offsets.revoking
        if any((r.topic, r.partition) not in owned for r in records):  # fetched before a revocation
            kept = [i for i, r in enumerate(records) if (r.topic, r.partition) in owned]
            records, ids = tuple(records[i] for i in kept), [ids[i] for i in kept]
            still = set(ids)
            events = [e for e in events if e.id in still]
        self.offsets.track(consumer, records, ids)
        self.totals.skipped += (await self.pipeline.submit(events)).skipped
        self.offsets.settle(self.pipeline.in_flight)
        await self.offsets.commit()

    async def _write_back(self, outcomes: list[EventOutcome]) -> None:
        await self.parts.writebacks.run(outcomes, self.store.links.for_workers)

    async def _recorded(self, event_ids: list[str]) -> None:
        self.offsets.recorded(event_ids)
        await self.offsets.commit()

    async def _flushed(self, report: BatchReport) -> None:
        self.metrics.record_batch(report)  # the batch's outcomes are recorded by now
        report.entries, report.revoked = [], []
        self.totals.add(report)
        self._progress.set()
        for event, error in report.failures:
            await self._dead_letter(event, error)

    async def _dead_letter(self, event: WorkerEvent, error: str) -> None:
        """A copy on the dead-letter topic for consumers of a real cluster; the failure itself is
        already in the store (retrying or dead), so a copy that cannot be sent loses nothing."""
        log.error(
            "event %s for %s failed (provisioner failures lists it): %s",
            event.id,
            event.subject,
            error,
            extra={"event_id": event.id, "worker_id": event.subject},
        )
        if not self._started or self._stopping:
            return
        try:
            await self.bus.dead_letter(event.subject.encode(), event.to_json().encode(), error)
        except Exception as exc:
            log.warning("could not copy event %s to the dead-letter topic: %s", event.id, exc)

    async def poll(self, source_name: str, only: list[str] | None = None) -> Diff:
        """Poll a source, or only the records a webhook named; one poll per source at a time, so a
        webhook and a scheduled poll never diff against the same snapshot twice."""
        result = await self._polling(source_name, only)
        self._wake.set()
        return result

    async def ready(self) -> dict[str, bool]:
        """Store reachable, broker connected, outcomes recorded, progress made: what /readyz answers."""
        try:
            await asyncio.to_thread(self.store.outbox.any_pending)  # a round trip: not on the event loop
            store = True
        except Exception:  # unreachable or failing: not ready
            store = False
        broker = self._started and await self.bus.ping()
        stalled = self.fleet.stalled()
        if stalled:
            log.warning("not ready: %s", stalled)
        recording = self.pipeline.health.error is None
        return {"store": store, "broker": broker, "recording": recording, "progress": not stalled}

    def wake(self) -> None:
        """New rows in the outbox: the relay should look now rather than at its next tick."""
        self._wake.set()

    async def fire_due(self, now: datetime | None = None) -> int:
        """Deferred actions that are due become events (re-planned from the current snapshot), off
        the event loop.

        They pass the same safety guard as a poll, per source: fifty end-of-day terminations from a
        bad import halt the source instead of disabling fifty people at midnight."""
        clock = FixedClock(now) if now else system_clock
        events = await asyncio.to_thread(fire_due, self.store, self.parts.gate, clock)
        if events:
            log.info("%d scheduled changes are due", len(events))
            self._wake.set()
        return len(events)

    def retry_due(self, *, worker_id: str | None = None, target: str | None = None, everything: bool = False) -> int:
        """Failed writes due for another try (or those a person picked) go out again, each worker
        re-planned from its current snapshot and links: a person terminated meanwhile is disabled,
        not created. Returns how many workers were re-planned."""
        events = retry_events(self.store, worker_id=worker_id, target=target, everything=everything)
        if events:
            log.info("retrying failed writes of %s", plural(len(events), "worker"))
            self._wake.set()
        return len(events)

    async def wait_idle(self, timeout: float = 600.0, progress: Callable[[int], None] | None = None) -> None:
        """Until every event in the outbox is confirmed as applied. Whether any is left is asked after
        each flush (one row read); how many, for `progress`, at most once a second (a count of what
        is in flight, a million events in a first sync)."""
        deadline = time.monotonic() + timeout
        counted = -COUNT_EVERY
        while True:
            self._progress.clear()  # before the question: a flush during it wakes the wait below
            if not await asyncio.to_thread(self.store.outbox.any_pending):
                break
            if progress and time.monotonic() - counted >= COUNT_EVERY:
                counted = time.monotonic()
                progress(await asyncio.to_thread(self.store.outbox.pending_count))
            if time.monotonic() > deadline:
                pending = await asyncio.to_thread(self.store.outbox.pending_count)
                raise TimeoutError(f"{plural(pending, 'event')} still unapplied after {timeout:.0f}s")
            # Woken by our own consumer; the timeout covers batches applied by other engine processes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=0.5)
        if progress:
            progress(0)
