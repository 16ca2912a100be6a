"""Fast tier: at-least-once delivery, exactly-once effect. Records a consumer did not commit are
delivered again after a restart (the in-memory bus keeps Kafka's contract), and the engine applies
nothing twice: the store knows which events it recorded."""

from __future__ import annotations

import pytest

from provisioner.engine.runtime.memory_bus import MemoryBroker
from tests.conftest import scim_users
from tests.flow import People, engine, hire, sync, until

pytestmark = pytest.mark.fast

ONE_BY_ONE = {"bulk": False}


async def test_records_not_committed_are_delivered_again_after_a_restart_and_applied_once(tmp_path, counting_scim):
    counting, server, scim = counting_scim
    people = People(tmp_path / "people.json")
    people.write(*[hire(i) for i in range(5)])
    broker = MemoryBroker(partitions=2)
    async with engine(tmp_path, server.url, people, broker=broker, target=ONE_BY_ONE) as first:
        assert await sync(first) == 5
        await until(lambda: sum(broker.committed.values()) == 5, "every offset committed")
    assert counting.writes["POST"] == 5 and len(scim_users(scim)) == 5
    log = len(first.store.log.recent(limit=1000))

    # The commit was lost (a crash between recording and committing): the group starts over.
    broker.committed.clear()
    async with engine(tmp_path, server.url, people, broker=broker, target=ONE_BY_ONE) as second:
        await until(lambda: sum(broker.committed.values()) == 5, "the redelivered records committed")
        assert second.totals.skipped == 5 and second.totals.applied == 0
    assert counting.writes["POST"] == 5 and len(scim_users(scim)) == 5
    assert len(second.store.log.recent(limit=1000)) == log


async def test_events_published_but_never_applied_are_applied_once_after_a_restart(tmp_path, counting_scim):
    counting, server, scim = counting_scim
    people = People(tmp_path / "people.json")
    people.write(*[hire(i) for i in range(4)])
    broker = MemoryBroker(partitions=2)
    # The first engine publishes and stops before applying (as if it died).
    async with engine(tmp_path, server.url, people, broker=broker, target=ONE_BY_ONE, consume=False) as first:
        await first.poll("hr")
        await until(lambda: sum(len(p) for p in broker.records) == 4, "the relay to publish every event")
        assert first.store.outbox.pending_count() == 4
    assert scim_users(scim) == []

    # The next engine consumes them, and its relay (a new leader) may publish the unconfirmed
    # events again before they are recorded: a second copy on the bus, skipped by id.
    async with engine(tmp_path, server.url, people, broker=broker, target=ONE_BY_ONE) as second:
        await second.wait_idle(timeout=30)
        await until(
            lambda: sum(broker.committed.values()) == sum(len(p) for p in broker.records),
            "every copy committed",
        )
        assert second.totals.applied == 4 and second.totals.skipped == sum(len(p) for p in broker.records) - 4
    assert counting.writes["POST"] == 4 and len(scim_users(scim)) == 4
