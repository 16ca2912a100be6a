"""The running engine: pollers → outbox → relay → Kafka → consumer → writers.

`Runtime` is an async context manager; `sync --once` and `run` (runtime/service.py) are built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Annotated, Any

from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.ports import FixedClock, system_clock
from provisioner.engine.kit.process import collect_rarely, freeze_startup, new_owner
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.apply import BatchReport
from provisioner.engine.runtime.bus import (
    CONSUMER_GROUP,
    EVENT_HEADERS,
    consumer_source,
    dead_letter_topic,
    embedded_broker,
    ensure_topics,
    events_topic,
    raw_values,
)
from provisioner.engine.runtime.fleet import Fleet, Vitals, claimer
from provisioner.engine.runtime.http.metrics import Metrics
from provisioner.engine.runtime.kafka_clients import broker_options, client_options, rebootstrapping_broker
from provisioner.engine.runtime.offsets import Offsets
from provisioner.engine.runtime.operations import retry_events
from provisioner.engine.runtime.pipeline import Pipeline
from provisioner.engine.runtime.poller import Diff
from provisioner.engine.runtime.polling import Polling
from provisioner.engine.runtime.rebalance import Rebalance
from provisioner.engine.runtime.relay import Relay
from provisioner.engine.runtime.usecases.fire_due import fire_due
from provisioner.engine.runtime.wiring import Parts

log = logging.getLogger("provisioner.engine")


class Runtime:
    """Owns the bus connection, the outbox relay and the consumer for one engine process."""

    def __init__(self, config: Config, *, consume: bool = True, parts: Parts | None = None, one_shot: bool = False):
        self.config = config
        self.one_shot = one_shot  # `sync --once`: takes partitions by assignment, never joins the group
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
        )
        self.offsets = Offsets()
        self.fleet = Fleet(self.store, self.owner, config.engine, self.pipeline, self.offsets, self.vitals)
        self.metrics.watch(self.fleet)
        self.broker: KafkaBroker | None = None
        self._stack = AsyncExitStack()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._relay: Relay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._subscribers: list[Any] = []
        self._stopping = False
        self._polling = Polling(self.parts, self.metrics)

    async def __aenter__(self) -> Runtime:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
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
        for subscriber in self._subscribers:
            await subscriber.stop()  # no new batches from here on
        # The last flush may publish dead letters, so the producer (in the stack) stops after it;
        # what was not recorded stays unconfirmed and is re-published.
        await self.pipeline.aclose()
        await self.fleet.aclose()
        await self._stack.aclose()
        await self.parts.aclose()

    async def _start(self) -> None:
        kafka = self.config.kafka
        topic = events_topic(kafka)
        options = client_options(kafka)
        bootstrap = kafka.bootstrap_servers or [await self._stack.enter_async_context(embedded_broker())]
        partitions = await ensure_topics(bootstrap, kafka, [topic, dead_letter_topic(kafka)])
        assignment, topics = consumer_source(kafka, topic, partitions, one_shot=self.one_shot)
        broker = KafkaBroker(
            bootstrap,
            logger=logging.getLogger("provisioner.kafka"),
            log_level=logging.DEBUG,
            **broker_options(kafka),
        )
        if self.consume:
            subscriber = broker.subscriber(
                *topics,
                **assignment,
                group_id=CONSUMER_GROUP,  # offsets are committed under it either way (Offsets)
                batch=True,
                auto_offset_reset="earliest",
                max_records=self.config.engine.batch_size,
                # When a fetch comes back empty FastStream also sleeps this long before the next:
                # an idle engine's reaction time is twice this (200 ms made a webhook take 400 ms).
                batch_timeout_ms=50,
                # Offsets are committed by hand, only past what the store has recorded (Offsets).
                ack_policy=AckPolicy.MANUAL,
                decoder=raw_values,
                # Lost partitions: stop starting their work before the new owner starts (rebalance.py).
                **({"listener": Rebalance(self.fleet, self.config.engine.revoke_wait)} if topics else {}),
            )
            subscriber(self._handle)
            self._subscribers.append(subscriber)
        await broker.start()
        self._stack.push_async_callback(broker.stop)
        rebootstrapping_broker(broker, self._subscribers)
        self.broker = broker
        self._relay = Relay(self.store, bootstrap, topic, self.owner, self._wake, self.vitals, options)
        self._relay_task = asyncio.create_task(self._relay.run(lambda: self._stopping), name="outbox-relay")
        self._beat_task = asyncio.create_task(self.fleet.run(lambda: self._stopping), name="engine-heartbeat")
        collect_rarely()
        freeze_startup()

    async def _handle(self, messages: list[bytes], message: Annotated[KafkaMessage, Context("message")]) -> None:
        events, ids = [], list[str | None]()
        for raw in messages:
            try:
                events.append(WorkerEvent.model_validate_json(raw))
                ids.append(events[-1].id)
            except ValueError as exc:
                log.error("dropping a message that is not a WorkerEvent: %s", exc)
                ids.append(None)
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        consumer: Any = message.consumer  # aiokafka's consumer, whose assignment moves in rebalances
        owned = {(p.topic, p.partition) for p in consumer.assignment() - self.offsets.revoking}
        if any((r.topic, r.partition) not in owned for r in records):  # fetched before a revocation
            kept = [i for i, r in enumerate(records) if (r.topic, r.partition) in owned]
            records, ids = tuple(records[i] for i in kept), [ids[i] for i in kept]
            still = set(ids)
            events = [e for e in events if e.id in still]
        self.offsets.track(message.consumer, records, ids)
        self.totals.skipped += (await self.pipeline.submit(events)).skipped
        self.offsets.settle(self.pipeline.in_flight)
        await self.offsets.commit()

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
        if self.broker is None or self._stopping:
            return
        try:
            await self.broker.publish(
                event.model_dump_json().encode(),
                dead_letter_topic(self.config.kafka),
                key=event.subject.encode(),
                headers={**EVENT_HEADERS, "x-error": error[:1000]},
            )
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
            await asyncio.to_thread(self.store.outbox.pending_count)  # a round trip: not on the event loop
            store = True
        except Exception:  # unreachable or failing: not ready
            store = False
        broker = self.broker is not None and await self.broker.ping(timeout=2.0)
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
        """Until every event in the outbox is confirmed as applied."""
        deadline = time.monotonic() + timeout
        while True:
            self._progress.clear()  # before the count: a flush during it wakes the wait below
            if (pending := await asyncio.to_thread(self.store.outbox.pending_count)) == 0:
                break
            if progress:
                progress(pending)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{plural(pending, 'event')} still unapplied after {timeout:.0f}s")
            # Woken by our own consumer; the timeout covers batches applied by other engine processes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=0.5)
        if progress:
            progress(0)
