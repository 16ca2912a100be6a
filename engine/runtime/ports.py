"""The event bus as the runtime sees it: what the relay publishes to and what the consumer receives.

Two implementations keep the same contract: Kafka (runtime/kafka_bus.py: the embedded Tansu broker
or a cluster) and in memory (runtime/memory_bus.py: tests and one-process runs).

- Publishing takes keyed records and returns once the bus has acknowledged all of them. A key
  always lands on one partition, and one key's records in the order given.
- Consuming delivers batches (each record with its partition and offset) to one handler, one batch
  at a time, at least once: the consumer commits offsets itself, only past what the store has
  recorded (runtime/offsets.py), and whatever it did not commit is delivered again to the next
  consumer of the group.
- A listener hears which partitions are taken away (awaited before the new owner starts) and
  which are assigned (runtime/rebalance.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class Partition(NamedTuple):
    """One partition of a topic (equal to, and hashed like, aiokafka's TopicPartition)."""

    topic: str
    partition: int


class Record(Protocol):
    """One delivered record (aiokafka's ConsumerRecord has these fields)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...


class Consumer(Protocol):
    """The consumer behind a batch: its assignment moves in rebalances; offsets, lag."""

    def assignment(self) -> set[Partition]: ...
    async def commit(self, offsets: dict[Partition, int]) -> None: ...
    def highwater(self, partition: Partition) -> int | None: ...
    async def committed(self, partition: Partition) -> int | None: ...
    async def position(self, partition: Partition) -> int: ...


@dataclass(frozen=True)
class Batch:
    records: Sequence[Record]
    consumer: Consumer


Handler = Callable[[Batch], Awaitable[None]]


class RebalanceListener(Protocol):
    async def on_partitions_revoked(self, revoked: set[Partition]) -> None: ...
    async def on_partitions_assigned(self, assigned: set[Partition]) -> None: ...


# (key, value): the key (a worker id) picks the partition.
KeyedRecord = tuple[bytes, bytes]


class Publisher(Protocol):
    async def publish(self, records: Sequence[KeyedRecord]) -> None:
        """Every record, acknowledged, before this returns; raises when one was not."""

    async def aclose(self) -> None:
        """What is still being sent is sent, then the connection closes."""


class Bus(Protocol):
    async def start(self, handler: Handler | None, listener: RebalanceListener) -> None:
        """Connect and, given a handler, consume the events topic (the listener hears rebalances)."""

    def publisher(self) -> Publisher:
        """A publisher of the events topic (the relay's)."""

    async def dead_letter(self, key: bytes, value: bytes, error: str) -> None:
        """A copy of an event that failed, for readers of the dead-letter topic."""

    async def ping(self) -> bool:
        """Whether the bus answers (/readyz)."""

    async def stop_consuming(self) -> None:
        """No new batches from here on (the handler may still be finishing one)."""

    async def aclose(self) -> None:
        """Disconnect; the embedded broker, if any, stops."""
