"""The outbox relay: rows the store committed become Kafka messages, in order, per worker.

One person's events share a key (the worker id) and so a partition, in outbox order. With several
engine processes one of them relays, under a lease renewed every turn; the process that takes the
lease over re-publishes what was published but never confirmed: after a crash that is exactly
what would otherwise be lost.

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
    def __init__(self, store: Store, bootstrap: str, topic: str, owner: str, wake: asyncio.Event):
        self.store = store
        self.bootstrap = bootstrap
        self.topic = topic
        self.owner = owner
        self.wake = wake  # set when the outbox has new rows: look now rather than at the next tick
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
        if not await asyncio.to_thread(store.schedule.acquire_lease, "relay", self.owner, LEASE_S, record=False):
            await asyncio.sleep(LEASE_S / 3)
            return False
        if not leading and (requeued := await asyncio.to_thread(store.outbox.requeue_unconfirmed)):
            log.info("re-publishing %d events that were never confirmed as applied", requeued)
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
        """Every row, acknowledged by the cluster (all in-sync replicas) before this returns."""
        producer = await self._started()
        partitions = sorted(await producer.partitions_for(self.topic))
        open_batches: dict[int, Any] = {}
        sent = []
        for row in rows:
            key, value = row.worker_id.encode(), row.payload.encode()
            partition = self._partitioner(key, partitions, partitions)
            batch = open_batches.get(partition)
            if batch is None or batch.append(key=key, value=value, timestamp=None, headers=_HEADERS) is None:
                if batch is not None:  # full: it goes now, behind the earlier batches of its partition
                    sent.append(await producer.send_batch(batch, self.topic, partition=partition))
                batch = open_batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=_HEADERS) is None:
                    raise ValueError(f"event {row.event_id} is larger than a Kafka record batch ({BATCH_BYTES} bytes)")
        for partition, batch in open_batches.items():
            sent.append(await producer.send_batch(batch, self.topic, partition=partition))
        await asyncio.gather(*sent)

    async def _started(self) -> AIOKafkaProducer:
        # Started on the first rows, not with the engine: a sync with nothing to publish needs none.
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", max_batch_size=BATCH_BYTES)
            await producer.start()
            self._producer = producer
        return self._producer

    async def aclose(self) -> None:
        """Hand the lease over at once (a clean stop) and close the producer."""
        with contextlib.suppress(Exception):  # an unreachable store: the lease then runs out by itself
            await asyncio.to_thread(self.store.schedule.release_lease, "relay", self.owner)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
