"""Fast tier: what goes wrong, through the whole flow in one process (in-memory bus, SQLite store,
scim2-server in a thread): a transient failure retried into success, a permanent one dead-lettered
(and copied to the bus's dead-letter topic), a source that suddenly returns nobody halted by the
mass-deprovision guard."""

from __future__ import annotations

import pytest

from provisioner.engine.runtime.memory_bus import MemoryBroker
from tests.conftest import scim_users
from tests.flow import People, engine, hire, sync, until, user

pytestmark = pytest.mark.fast

RETRY_SOON = {"attempts": 5, "initial": 0.05, "max": 0.1}
ONE_BY_ONE = {"bulk": False}  # each write its own request, as CountingApp counts and fails them


async def test_a_transient_failure_is_retried_until_it_succeeds(tmp_path, counting_scim):
    counting, server, scim = counting_scim
    people = People(tmp_path / "people.json")
    people.write(hire(1))
    counting.failing = "503 Service Unavailable"
    async with engine(tmp_path, server.url, people, retry=RETRY_SOON, target=ONE_BY_ONE) as runtime:
        await sync(runtime)
        [failure] = runtime.store.failures.all()
        assert (failure.worker_id, failure.state, failure.attempts) == ("hr:1", "retrying", 1)
        assert scim_users(scim) == []

        counting.failing = None  # the app is back; the scheduler's job would now call retry_due
        await until(runtime.retry_due, "the failed write to fall due again")
        await runtime.wait_idle(timeout=30)
        assert runtime.store.failures.all() == []
        ada = user(scim, "hr:1")
        assert ada["active"] is True and counting.writes["POST"] == 1
        assert [e.result for e in runtime.store.log.recent("hr:1") if e.action == "retry"] == ["retrying", "success"]


async def test_a_permanent_failure_is_dead_lettered_and_a_person_can_retry_it(tmp_path, counting_scim):
    counting, server, scim = counting_scim
    people = People(tmp_path / "people.json")
    people.write(hire(1))
    counting.failing = "400 Bad Request"
    broker = MemoryBroker()
    async with engine(tmp_path, server.url, people, broker=broker, retry=RETRY_SOON, target=ONE_BY_ONE) as runtime:
        await sync(runtime)
        [failure] = runtime.store.failures.all()
        assert (failure.state, failure.attempts, failure.next_at) == ("dead", 1, None)  # never due by itself
        assert runtime.retry_due() == 0
        [copy] = broker.dead_letters
        assert copy.key == b"hr:1" and "400" in copy.error and b'"subject":"hr:1"' in copy.value

        counting.failing = None
        assert runtime.retry_due(worker_id="hr:1") == 1  # as `provisioner retry --worker hr:1`
        await runtime.wait_idle(timeout=30)
        assert runtime.store.failures.all() == [] and user(scim, "hr:1")["active"] is True


async def test_a_source_that_suddenly_returns_nobody_is_halted_not_deprovisioned(tmp_path, scim_server, scim):
    people = People(tmp_path / "people.json")
    people.write(*[hire(i) for i in range(6)])
    safety = {"max_deprovisions": 3, "max_deprovision_ratio": None}
    async with engine(tmp_path, scim_server.url, people, safety=safety) as runtime:
        assert await sync(runtime) == 6
        people.write()  # the export came back empty
        result = await runtime.poll("hr")
        await runtime.wait_idle(timeout=30)
        assert result.events == [] and len(result.held) == 6
        assert "6 workers would be deprovisioned" in (result.halted or "")
        state = runtime.store.sources.states()["hr"]
        assert state.halted and "max_deprovisions: 3" in state.reason
        assert len(scim_users(scim)) == 6 and all(u["active"] for u in scim_users(scim))
