"""The Bus port in memory: the fast test tier and one-process runs, no broker.

It keeps Kafka's contract where the engine relies on it: a key always lands on one partition, in
the order published; a batch holds records of one partition; the consumers of the group share the
partitions, and when one joins or leaves, the partitions that move are first revoked from their
owner (its listener awaited) and then assigned; a consumer starts a partition at the group's
committed offset, so what was not committed is delivered again (at least once, as after a crash).

`MemoryBroker` is the shared part (partitions, the group's offsets, dead letters) and outlives the
engines; `MemoryBus` is one engine's connection to it, the Bus it is given. A test hands one broker
to an engine, stops it and starts another, as engines restart on one Kafka cluster, or runs two
side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from provisioner.engine.runtime.ports import Batch, Handler, KeyedRecord, Partition, RebalanceListener

log = logging.getLogger("provisioner.bus")

TOPIC = "worker-events"
STOP_WAIT_S = 10.0  # for the batch being handled when consuming stops, as a Kafka consumer finishes it


@dataclass(frozen=True)
class MemoryRecord:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


@dataclass(frozen=True)
class DeadLetter:
    key: bytes
    value: bytes
    error: str


class MemoryBroker:
    def __init__(self, partitions: int = 4, max_records: int = 500):
        self.partitions = partitions
        self.max_records = max_records  # per batch, as the Kafka consumer's engine.batch_size
        self.records: list[list[MemoryRecord]] = [[] for _ in range(partitions)]  # per partition
        self.committed: dict[Partition, int] = {}  # the group's offsets, kept across consumers
        self.dead_letters: list[DeadLetter] = []
        self.arrived = asyncio.Condition()  # notified by every publish and rebalance
        self.members: list[MemoryConsumer] = []  # the group, in joining order
        self._rebalancing = asyncio.Lock()

    def partition_of(self, key: bytes) -> int:
        # A stable hash (Python's own is salted per process): one key, one partition, always.
        return zlib.crc32(key) % self.partitions

    async def append(self, records: Sequence[KeyedRecord]) -> None:
        for key, value in records:
            n = self.partition_of(key)
            self.records[n].append(MemoryRecord(TOPIC, n, len(self.records[n]), key, value))
        async with self.arrived:
            self.arrived.notify_all()

    async def join(self, member: MemoryConsumer) -> None:
        self.members.append(member)
        await self.rebalance()

    async def leave(self, member: MemoryConsumer) -> None:
        # Leaving, a consumer is not told of its revocation (nor is Kafka's): its partitions move.
        member.owned.clear()
        self.members.remove(member)
        await self.rebalance()

    async def rebalance(self) -> None:
        """Partition n goes to member n mod len(members): each lost partition is revoked from its
        owner first, then each member hears its new assignment."""
        async with self._rebalancing:
            wanted = {
                id(m): {p for p in self._partitions() if p.partition % len(self.members) == i}
                for i, m in enumerate(self.members)
            }
            for member in self.members:
                if lost := member.owned.keys() - wanted[id(member)]:
                    await member.listener.on_partitions_revoked(set(lost))
                    for partition in lost:
                        del member.owned[partition]
            for member in self.members:
                for partition in wanted[id(member)] - member.owned.keys():
                    member.owned[partition] = self.committed.get(partition, 0)
                await member.listener.on_partitions_assigned(set(member.owned))
        async with self.arrived:
            self.arrived.notify_all()

    def _partitions(self) -> list[Partition]:
        return [Partition(TOPIC, n) for n in range(self.partitions)]


class MemoryBus:
    """One engine's connection to a MemoryBroker (its own unless given one): the Bus port."""

    def __init__(self, broker: MemoryBroker | None = None):
        self.broker = broker if broker is not None else MemoryBroker()
        self._consumer: MemoryConsumer | None = None

    async def start(self, handler: Handler | None, listener: RebalanceListener) -> None:
        if handler is not None:
            self._consumer = MemoryConsumer(self.broker, handler, listener)
            await self.broker.join(self._consumer)
            self._consumer.start()

    def publisher(self) -> MemoryPublisher:
        return MemoryPublisher(self.broker)

    async def dead_letter(self, key: bytes, value: bytes, error: str) -> None:
        self.broker.dead_letters.append(DeadLetter(key, value, error))

    async def ping(self) -> bool:
        return True

    async def stop_consuming(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def aclose(self) -> None:
        await self.stop_consuming()


class MemoryPublisher:
    def __init__(self, broker: MemoryBroker):
        self.broker = broker

    async def publish(self, records: Sequence[KeyedRecord]) -> None:
        await self.broker.append(records)

    async def aclose(self) -> None:
        return None


class MemoryConsumer:
    """A member of the group: delivers one of its partitions' next records at a time, round robin,
    each batch handled before the next is taken."""

    def __init__(self, broker: MemoryBroker, handler: Handler, listener: RebalanceListener):
        self.broker = broker
        self.handler = handler
        self.listener = listener
        self.owned: dict[Partition, int] = {}  # assigned partition → position (next offset to deliver)
        self.running = True
        self._last = -1  # the partition served last
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="memory-bus-consumer")

    async def _run(self) -> None:
        while self.running:
            if not (batch := self._next()):
                async with self.broker.arrived:
                    await self.broker.arrived.wait_for(lambda: not self.running or bool(self._peek()))
                continue
            try:
                await self.handler(batch)
            except Exception:  # as FastStream does: said, and the next batch comes
                log.exception("handling a batch of %s failed", batch.records[0].partition)

    def _peek(self) -> list[tuple[Partition, list[MemoryRecord]]]:
        size = self.broker.max_records
        found = [(p, self.broker.records[p.partition][at : at + size]) for p, at in sorted(self.owned.items())]
        return [(p, records) for p, records in found if records]

    def _next(self) -> Batch | None:
        waiting = self._peek()
        if not waiting or not self.running:
            return None
        # Round robin: the first partition with records after the one served last.
        partition, records = next(((p, r) for p, r in waiting if p.partition > self._last), waiting[0])
        self._last = partition.partition
        self.owned[partition] += len(records)
        return Batch(records, self)

    async def stop(self) -> None:
        """No new batches; the one being handled finishes (or is cancelled after STOP_WAIT_S)."""
        self.running = False
        async with self.broker.arrived:
            self.broker.arrived.notify_all()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, STOP_WAIT_S)
        await self.broker.leave(self)  # a consumer that left holds nothing: it commits nothing more

    def assignment(self) -> set[Partition]:
        return set(self.owned)

    async def commit(self, offsets: dict[Partition, int]) -> None:
        if any(p not in self.owned for p in offsets):
            raise RuntimeError("committing offsets of partitions this consumer does not hold")
        self.broker.committed.update(offsets)

    def highwater(self, partition: Partition) -> int | None:
        return len(self.broker.records[partition.partition])

    async def committed(self, partition: Partition) -> int | None:
        return self.broker.committed.get(partition)

    async def position(self, partition: Partition) -> int:
        return self.owned.get(partition, 0)
