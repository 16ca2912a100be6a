"""The outbox relay: rows the store committed become Kafka messages, in order, per worker.

One person's events share a key (the worker id) and so a partition, in outbox order. With several
engine processes one of them relays, under a lease renewed every turn; the process that takes the
lease over re-publishes what was published but never confirmed and that no live consumer has
claimed: after a crash that is exactly what would otherwise be lost, and what a live consumer is
applying is not sent a second time.

The relay has a producer of its own and fills Kafka record batches itself, one per partition,
instead of sending message by message: a first sync of 100,000 people spent two seconds of its
one busy core in per-message futures and framework layers that a stored payload does not need
(it is published as the bytes the poll wrote, never decoded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from provisioner.engine.runtime.bus import EVENT_HEADERS
from provisioner.engine.runtime.fleet import Vitals
from provisioner.engine.runtime.kafka_clients import rebootstrapping
from provisioner.engine.store import Store
from provisioner.engine.store.outbox import Unpublished

log = logging.getLogger("provisioner.engine")

LEASE_S = 15.0
ROWS_PER_TURN = 2000
# Record batches well under Kafka's default 1 MiB message.max.bytes (aiokafka's default is 16 KiB,
# which made a batch of ~17 events).
BATCH_BYTES = 256 * 1024
_HEADERS = [(name, value.encode()) for name, value in EVENT_HEADERS.items()]


class Relay:
    def __init__(
        self,
        store: Store,
        bootstrap: list[str],
        topic: str,
        owner: str,
        wake: asyncio.Event,
        vitals: Vitals,
        options: dict[str, Any] | None = None,
    ):
        self.store = store
        self.bootstrap = bootstrap
        self.options = options or {}  # TLS and SASL (kafka_clients.client_options)
        self.topic = topic
        self.owner = owner
        self.wake = wake  # set when the outbox has new rows: look now rather than at the next tick
        self.vitals = vitals
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()  # Kafka's own: murmur2 of the key

    async def run(self, stopping: Callable[[], bool]) -> None:
        leading = False
        while not stopping():
            try:
                leading = await self.turn(leading)
            except Exception as exc:  # the store or the broker failed this turn: the rows wait for the next
                log.warning("outbox relay: %s; trying again in a second", exc)
                await asyncio.sleep(1.0)

    async def turn(self, leading: bool) -> bool:
        """One turn; returns whether this process leads (holds the relay lease)."""
        store = self.store
        self.vitals.leading = await asyncio.to_thread(
            store.schedule.acquire_lease, "relay", self.owner, LEASE_S, record=False
        )
        if not self.vitals.leading:
            await asyncio.sleep(LEASE_S / 3)
            return False
        # A new leader: what was published and never confirmed may have died with a consumer; what
        # a live consumer has claimed is on its way and is left alone (sent again, oldest first).
        if not leading and (requeued := await asyncio.to_thread(store.outbox.requeue_unconfirmed)):
            self.vitals.republished += requeued
            log.info("re-publishing %d events that were never confirmed as applied nor claimed", requeued)
        self.wake.clear()  # before the read: a poll committing during it wakes the next wait
        rows = await asyncio.to_thread(store.outbox.unpublished, ROWS_PER_TURN)
        if not rows:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)
            return True
        await self.publish(rows)
        await asyncio.to_thread(store.outbox.mark_published, [r.seq for r in rows])
        return True

    async def publish(self, rows: list[Unpublished]) -> None:
        """Every row, acknowledged by the cluster (all in-sync replicas) before this returns.

        One partition's batches go strictly one after another, each once the previous one is
        acknowledged, and a partition stops at its first failure: had a later batch been queued
        behind one that failed (its delivery timed out while the cluster was away), it could land
        first, and the retry of the earlier one after it — a worker's older event applied last.
        The partitions are sent side by side."""
        producer = await self._started()
        partitions = sorted(await producer.partitions_for(self.topic))
        records: dict[int, list[tuple[bytes, bytes]]] = {}
        for row in rows:
            key = row.worker_id.encode()
            records.setdefault(self._partitioner(key, partitions, partitions), []).append((key, row.payload.encode()))
        try:
            async with asyncio.TaskGroup() as group:
                for partition, mine in records.items():
                    group.create_task(self._send_in_order(producer, partition, mine))
        except ExceptionGroup as failed:  # the first failure says why; the others are its echoes
            raise failed.exceptions[0] from None

    async def _send_in_order(self, producer: AIOKafkaProducer, partition: int, records: list[Any]) -> None:
        batch = producer.create_batch()
        for key, value in records:
            # None: the batch is full, so it goes and the record opens the next one (an empty
            # batch takes its first record whatever its size; the broker judges it).
            while batch.append(key=key, value=value, timestamp=None, headers=_HEADERS) is None:
                await (await producer.send_batch(batch, self.topic, partition=partition))
                batch = producer.create_batch()
        await (await producer.send_batch(batch, self.topic, partition=partition))

    async def _started(self) -> AIOKafkaProducer:
        # Started on the first rows, not with the engine: a sync with nothing to publish needs none.
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", max_batch_size=BATCH_BYTES, **self.options
            )
            rebootstrapping(producer.client)
            try:
                await producer.start()
            except BaseException:  # an unreachable cluster: closed now, a new one tries next turn
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def aclose(self) -> None:
        """Close the producer (what it still sends is sent), then hand the lease over at once: a
        clean stop. Another engine taking it over earlier could publish beside our last sends."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        with contextlib.suppress(Exception):  # an unreachable store: the lease then runs out by itself
            await asyncio.to_thread(self.store.schedule.release_lease, "relay", self.owner)
