"""The Bus port in memory: the fast test tier and one-process runs, no broker.

It keeps Kafka's contract where the engine relies on it: a key always lands on one partition, in
the order published; a consumer of the group starts from the group's committed offsets, so what it
did not commit is delivered again to the next consumer (at least once, as after a crash); a batch
holds records of one partition; the listener hears the assignment when consuming starts. The
records and the committed offsets live as long as the MemoryBus object, so a test hands one bus to
an engine, stops it and starts another on the same bus, as engines restart on one Kafka cluster.
One consumer at a time: there is no group to rebalance.
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


class MemoryBus:
    def __init__(self, partitions: int = 4, max_records: int = 500):
        self.partitions = partitions
        self.max_records = max_records  # per batch, as the Kafka consumer's engine.batch_size
        self.records: list[list[MemoryRecord]] = [[] for _ in range(partitions)]  # per partition
        self.committed: dict[Partition, int] = {}  # the group's offsets, kept across consumers
        self.dead_letters: list[DeadLetter] = []
        self.arrived = asyncio.Event()  # set by every publish: a waiting consumer looks again
        self._consumer: MemoryConsumer | None = None

    def partition_of(self, key: bytes) -> int:
        # A stable hash (Python's own is salted per process): one key, one partition, always.
        return zlib.crc32(key) % self.partitions

    async def start(self, handler: Handler | None, listener: RebalanceListener) -> None:
        if handler is None:
            return
        if self._consumer is not None and self._consumer.running:
            raise RuntimeError("the memory bus has a consumer already (one at a time)")
        self._consumer = MemoryConsumer(self, handler)
        await listener.on_partitions_assigned(self._consumer.assignment())
        self._consumer.start()

    def publisher(self) -> MemoryPublisher:
        return MemoryPublisher(self)

    def append(self, records: Sequence[KeyedRecord]) -> None:
        for key, value in records:
            n = self.partition_of(key)
            self.records[n].append(MemoryRecord(TOPIC, n, len(self.records[n]), key, value))
        self.arrived.set()

    async def dead_letter(self, key: bytes, value: bytes, error: str) -> None:
        self.dead_letters.append(DeadLetter(key, value, error))

    async def ping(self) -> bool:
        return True

    async def stop_consuming(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def aclose(self) -> None:
        await self.stop_consuming()


class MemoryPublisher:
    def __init__(self, bus: MemoryBus):
        self.bus = bus

    async def publish(self, records: Sequence[KeyedRecord]) -> None:
        self.bus.append(records)

    async def aclose(self) -> None:
        return None


class MemoryConsumer:
    """Delivers one partition's next records at a time, round robin, each batch handled before the
    next is fetched; its position starts at the group's committed offsets."""

    def __init__(self, bus: MemoryBus, handler: Handler):
        self.bus = bus
        self.handler = handler
        self.running = True
        self._position = {p: bus.committed.get(p, 0) for p in self._partitions()}
        self._task: asyncio.Task[None] | None = None

    def _partitions(self) -> list[Partition]:
        return [Partition(TOPIC, n) for n in range(self.bus.partitions)]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="memory-bus-consumer")

    async def _run(self) -> None:
        while self.running:
            self.bus.arrived.clear()  # before looking: a publish meanwhile wakes the wait below
            delivered = False
            for partition in self._partitions():
                start = self._position[partition]
                records = self.bus.records[partition.partition][start : start + self.bus.max_records]
                if records and self.running:
                    self._position[partition] += len(records)
                    delivered = True
                    try:
                        await self.handler(Batch(records, self))
                    except Exception:  # as FastStream does: said, and the next batch comes
                        log.exception("handling a batch of %s failed", partition)
            if not delivered:
                await self.bus.arrived.wait()

    async def stop(self) -> None:
        """No new batches; the one being handled finishes (or is cancelled after STOP_WAIT_S)."""
        self.running = False
        self.bus.arrived.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, STOP_WAIT_S)
        self._position.clear()  # a stopped consumer holds no partitions: it commits nothing more

    def assignment(self) -> set[Partition]:
        return set(self._position)

    async def commit(self, offsets: dict[Partition, int]) -> None:
        if any(p not in self._position for p in offsets):
            raise RuntimeError("committing offsets of partitions this consumer does not hold")
        self.bus.committed.update(offsets)

    def highwater(self, partition: Partition) -> int | None:
        return len(self.bus.records[partition.partition])

    async def committed(self, partition: Partition) -> int | None:
        return self.bus.committed.get(partition)

    async def position(self, partition: Partition) -> int:
        return self._position.get(partition, 0)
