"""FireDue over one unit of work: each due row fires once when two engines take due work at the
same moment, and due work is judged against the workers the store knows, as a poll and
provision-now are (never against how many records the last read happened to hold)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.ports import FixedClock
from provisioner.engine.runtime.usecases.fire_due import fire_due
from provisioner.engine.runtime.usecases.ingest import ingest
from provisioner.engine.store import Deferred, Store
from tests.processes import wait_for
from tests.test_end_to_end import write
from tests.test_safety_and_schedule import linked_parts, staff


def waiting_on_a_lock(store: Store) -> bool:
    """Another connection of this database is waiting for a row lock (PostgreSQL)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    with store.db.session() as s:
        return bool(s.execute(text(query)).scalar())


@pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_due_rows_another_engine_is_firing_are_not_fired_again(tmp_path, store_url):
    parts, _ = linked_parts(tmp_path, 2, url=store_url)
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        with parts.store.unit() as s:
            due_at = datetime.now(UTC) - timedelta(minutes=1)
            s.add_all(Deferred(worker_id=f"hr:{i}", target="app", action="enable", effective_at=due_at) for i in (0, 1))
        queued, now = parts.store.outbox.pending_count(), FixedClock(datetime.now(UTC))
        fired: list[list[WorkerEvent]] = []
        with parts.store.unit() as first:
            assert len(parts.store.schedule.claim_due(first, now())) == 2  # one engine has them, not yet committed
            other = threading.Thread(target=lambda: fired.append(fire_due(parts.store, parts.gate, now)))
            other.start()  # the other engine, on its own connection, at the same moment
            wait_for(lambda: fired or waiting_on_a_lock(parts.store), timeout=20, what="the other engine waiting")
        other.join(timeout=20)
        assert fired == [[]] and parts.store.outbox.pending_count() == queued
    finally:
        await parts.aclose()


async def test_due_work_is_judged_against_the_workers_the_store_knows(tmp_path):
    parts, people = linked_parts(tmp_path, 10, max_deprovisions=None, max_deprovision_ratio=0.5)
    soon = datetime.now(UTC) + timedelta(days=3)
    try:
        leaving = [{**p, "termination_date": soon.date().isoformat()} for p in staff(10)[:2]]
        write(people, *leaving, *staff(10)[2:])
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        await ingest(parts.sources["hr"], parts.store, parts.gate, only=["5"])  # a webhook named one person
        with parts.store.unit() as s:
            s.add_all(Deferred(worker_id=f"hr:{i}", target="app", action="disable", effective_at=soon) for i in (0, 1))
        # Two of ten leaving on the same day is within a 50% ratio, whatever the webhook read.
        events = fire_due(parts.store, parts.gate, FixedClock(soon + timedelta(days=1)))
        assert sorted(e.subject for e in events) == ["hr:0", "hr:1"]
        assert not parts.store.sources.states()["hr"].halted and parts.store.schedule.deferred() == []
    finally:
        await parts.aclose()
