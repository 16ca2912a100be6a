"""Fast tier: the in-memory bus keeps the contract of the Bus port (runtime/ports.py) that the
engine relies on with Kafka: one key, one partition, in order; batches of one partition; a consumer
starts at the group's committed offsets (what was not committed comes again); when a consumer joins,
the partitions that move are revoked from their owner before anyone is assigned them."""

from __future__ import annotations

import pytest

from provisioner.engine.runtime.memory_bus import TOPIC, MemoryBroker, MemoryBus
from provisioner.engine.runtime.ports import Batch, Partition
from tests.flow import until

pytestmark = pytest.mark.fast


class Member:
    """A handler and a listener that write down what they are given, in order."""

    def __init__(self, name: str, said: list[tuple[str, str, set[int]]]):
        self.name, self.said = name, said
        self.batches: list[Batch] = []

    async def handle(self, batch: Batch) -> None:
        self.batches.append(batch)

    async def on_partitions_revoked(self, revoked: set[Partition]) -> None:
        self.said.append((self.name, "revoked", {p.partition for p in revoked}))

    async def on_partitions_assigned(self, assigned: set[Partition]) -> None:
        self.said.append((self.name, "assigned", {p.partition for p in assigned}))

    def values(self) -> list[bytes]:
        return [r.value for b in self.batches for r in b.records if r.value is not None]


def keyed(n: int, keys: int = 16) -> list[tuple[bytes, bytes]]:
    return [(f"hr:{i % keys}".encode(), f"{i}".encode()) for i in range(n)]


async def test_one_key_lands_on_one_partition_in_order():
    broker = MemoryBroker(partitions=3)
    await broker.append(keyed(40, keys=4))
    for key in (f"hr:{n}".encode() for n in range(4)):
        places = {r.partition for part in broker.records for r in part if r.key == key}
        assert len(places) == 1
        [partition] = places
        values = [int(r.value) for r in broker.records[partition] if r.key == key]
        assert values == sorted(values) and len(values) == 10
    for n, records in enumerate(broker.records):  # each partition's offsets count up from 0
        assert [(r.partition, r.offset) for r in records] == [(n, offset) for offset in range(len(records))]


async def test_batches_hold_one_partition_and_what_was_not_committed_comes_again():
    broker = MemoryBroker(partitions=2, max_records=3)
    await broker.append(keyed(12))
    assert all(len(records) >= 3 for records in broker.records)  # both partitions have records
    said: list[tuple[str, str, set[int]]] = []
    first, bus = Member("a", said), MemoryBus(broker)
    await bus.start(first.handle, first)
    await until(lambda: len(first.values()) == 12, "every record delivered")
    assert all(len({r.partition for r in b.records}) == 1 and len(b.records) <= 3 for b in first.batches)
    consumer = first.batches[0].consumer
    assert consumer.assignment() == {Partition(TOPIC, 0), Partition(TOPIC, 1)}
    await consumer.commit({Partition(TOPIC, 0): 2})  # partition 1 never committed
    await bus.aclose()
    assert consumer.assignment() == set()  # a consumer that left holds nothing

    again = Member("b", said)
    await MemoryBus(broker).start(again.handle, again)
    expected = len(broker.records[0]) - 2 + len(broker.records[1])
    await until(lambda: len(again.values()) == expected, "the uncommitted records delivered again")
    assert next(r.offset for b in again.batches for r in b.records if r.partition == 0) == 2


async def test_a_joining_consumer_gets_partitions_only_after_their_owner_let_them_go():
    broker = MemoryBroker(partitions=4)
    said: list[tuple[str, str, set[int]]] = []
    first, second = Member("a", said), Member("b", said)
    await MemoryBus(broker).start(first.handle, first)
    await MemoryBus(broker).start(second.handle, second)
    assert said == [
        ("a", "assigned", {0, 1, 2, 3}),
        ("a", "revoked", {1, 3}),
        ("a", "assigned", {0, 2}),
        ("b", "assigned", {1, 3}),
    ]
    await broker.append(keyed(16))
    await until(lambda: len(first.values()) + len(second.values()) == 16, "both consumers served")
    assert {r.partition for b in first.batches for r in b.records} == {0, 2}
    assert {r.partition for b in second.batches for r in b.records} == {1, 3}
    with pytest.raises(RuntimeError):  # as Kafka refuses a commit for a partition the member lost
        await first.batches[0].consumer.commit({Partition(TOPIC, 1): 1})
