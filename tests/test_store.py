"""The store on SQLite and on PostgreSQL: the same models, the same guarantees."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome, Link, LogEntry
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store, store_error

pytestmark = pytest.mark.fast


def worker(n: int, **kw) -> Worker:
    return Worker(id=f"hr:{n}", source="hr", remote_id=str(n), first_name=f"P{n}", **kw)


def commit(store: Store, events: list, upserts: list[Worker], removals: list[str], cursor: dict) -> None:
    """What a poll's unit of work writes: its events, the snapshots, the cursor."""
    with store.unit() as s:
        store.outbox.enqueue(s, events)
        store.snapshots.remove(s, "hr", removals)
        store.snapshots.upsert(s, "hr", upserts)
        store.snapshots.set_cursor(s, "hr", cursor)


def test_poll_commit_outbox_requeue_and_outcomes(store_url: str):
    store = Store(store_url)
    workers = [worker(1), worker(2)]
    events = [change_event("hr", None, None, w) for w in workers]
    commit(store, events, workers, [], {"records": 2})
    # a re-poll after a crash derives the same ids: no duplicate outbox rows
    commit(store, events, workers, [], {"records": 2})
    assert store.outbox.pending_count() == 2
    assert set(store.snapshots.of_source("hr")) == {"hr:1", "hr:2"}
    assert store.snapshots.cursor("hr") == {"records": 2}

    rows = store.outbox.unpublished(10)
    assert [r.worker_id for r in rows] == ["hr:1", "hr:2"]
    store.outbox.mark_published([r.seq for r in rows])
    assert store.outbox.unpublished(10) == []
    assert store.outbox.requeue_unconfirmed() == 2
    assert len(store.outbox.unpublished(10)) == 2

    outcome = EventOutcome(events[0].id, events[0])
    outcome.links.append(Link(worker_id="hr:1", target="app", account_id="abc", attributes={"userName": "a"}))
    outcome.log.append(
        LogEntry(
            event_id=events[0].id,
            worker_id="hr:1",
            target="app",
            action="create",
            result="success",
            attributes={"userName": "a"},
        )
    )
    record(store, [outcome])
    assert store.outbox.applied([e.id for e in events]) == {events[0].id}
    assert store.outbox.pending_count() == 1
    assert store.links.for_workers(["hr:1"])[("hr:1", "app")].attributes == {"userName": "a"}
    assert [e.action for e in store.log.recent("hr:1")] == ["create"]

    # removal drops the snapshot
    commit(store, [], [], ["hr:2"], {"records": 1})
    assert set(store.snapshots.of_source("hr")) == {"hr:1"}
    assert store.snapshots.count("hr") == 1 and store.snapshots.stored("hr:2") is None
    store.close()


def test_a_unit_of_work_that_fails_halfway_leaves_nothing_behind(store_url: str):
    store = Store(store_url)
    first = worker(1)
    commit(store, [change_event("hr", None, None, first)], [first], [], {"records": 1})
    moved = worker(1, title="CTO")
    with pytest.raises(RuntimeError), store.unit() as s:
        store.outbox.enqueue(s, [change_event("hr", first, first.content_hash(), moved)])
        store.snapshots.upsert(s, "hr", [moved, worker(2)])
        store.snapshots.set_cursor(s, "hr", {"records": 2})
        store.sources.halt("hr", "a halt written in the same unit", s)
        raise RuntimeError("the process dies before the commit")
    assert store.outbox.pending_count() == 1 and store.snapshots.cursor("hr") == {"records": 1}
    assert store.snapshots.get("hr:1") == first and store.snapshots.count("hr") == 1
    assert "hr" not in store.sources.states()
    store.close()


def test_unlink_on_delete(store_url: str):
    store = Store(store_url)
    first = EventOutcome("e1")
    first.links.append(Link(worker_id="hr:1", target="app", account_id="abc"))
    record(store, [first])
    second = EventOutcome("e2")
    second.unlinked.append(("hr:1", "app"))
    record(store, [second])
    assert store.links.all() == []
    store.close()


def test_leases_have_one_owner_until_they_expire_or_are_released(store_url: str):
    store = Store(store_url)
    assert store.schedule.acquire_lease("relay", "a", 60, record=False)
    assert not store.schedule.acquire_lease("relay", "b", 60)
    assert store.schedule.acquire_lease("relay", "a", 60)  # renewing is fine
    store.schedule.release_lease("relay", "a")
    assert store.schedule.acquire_lease("relay", "b", 0.001)
    time.sleep(0.01)  # b's lease has run out
    assert store.schedule.acquire_lease("relay", "a", 60)
    assert [r.owner for r in store.schedule.job_runs("relay")] == ["a", "b", "a"]  # the first, record=False, left none
    store.close()


def test_a_webhook_notice_is_first_once_across_processes_and_old_ones_are_forgotten(store_url: str):
    one, other = Store(store_url), Store(store_url)  # two engine processes, one database
    assert one.sources.first_notice("lever:token-1") is True
    assert other.sources.first_notice("lever:token-1") is False  # the replay reaches the other process
    assert other.sources.first_notice("lever:token-2") is True
    # with a zero keep window the old notices are pruned first, so the key is new again
    assert one.sources.first_notice("lever:token-1", keep=timedelta(0)) is True


def test_resume_approves_once_and_a_stale_approval_never_counts(store_url: str):
    store = Store(store_url)
    assert store.sources.resume("hr") is False  # not halted: nothing to approve
    store.sources.halt("hr", "7 workers would be deprovisioned in one poll")
    assert store.sources.resume("hr") is True and store.sources.approved() == {"hr"}
    assert store.sources.consume_approval("hr") is True
    assert store.sources.consume_approval("hr") is False  # spent by the first check it let through
    store.sources.halt("hr", "again")
    store.sources.resume("hr")
    assert store.sources.consume_approval("hr", within=timedelta(0)) is False  # older than its lifetime


def test_a_database_from_an_older_version_gains_the_new_columns(store_url):
    """Upgrading keeps the data: a table created before a column existed gets that column."""
    from sqlalchemy import create_engine, inspect, text

    old = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    with old.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE sourcestate (source VARCHAR PRIMARY KEY, halted BOOLEAN NOT NULL, "
                "reason VARCHAR, halted_at TIMESTAMP, last_poll_at TIMESTAMP, workers INTEGER NOT NULL)"
            )
        )
        conn.execute(text("INSERT INTO sourcestate (source, halted, workers) VALUES ('hr', false, 3)"))
        conn.execute(
            text(
                "CREATE TABLE outboxevent (seq INTEGER PRIMARY KEY, event_id VARCHAR NOT NULL UNIQUE, "
                "worker_id VARCHAR NOT NULL, payload JSON NOT NULL, created_at TIMESTAMP NOT NULL, "
                "published_at TIMESTAMP, confirmed_at TIMESTAMP)"
            )
        )
        # That version kept applied events, marked confirmed; this one keeps only those in flight.
        conn.execute(
            text(
                "INSERT INTO outboxevent (seq, event_id, worker_id, payload, created_at, published_at, confirmed_at) "
                "VALUES (1, 'done', 'hr:1', '{}', '2026-01-01', '2026-01-01', '2026-01-01'), "
                "(2, 'in-flight', 'hr:2', '{}', '2026-01-01', '2026-01-01', NULL)"
            )
        )
    old.dispose()
    store = Store(store_url)
    columns = {c["name"] for c in inspect(store.engine).get_columns("sourcestate")}
    assert {"failing", "failing_since"} <= columns
    assert store.sources.states()["hr"].workers == 3
    # ...and an index added since: the relay's query would otherwise scan every in-flight event.
    assert "ix_outboxevent_unpublished" in {i["name"] for i in inspect(store.engine).get_indexes("outboxevent")}
    assert store.outbox.pending_count() == 1
    assert store.outbox.requeue_unconfirmed() == 1  # the one in flight goes out again; the done one never
    store.close()


def test_a_store_error_is_one_line_in_a_log_without_the_statement(store_url: str):
    """A heartbeat or the relay failing while a large poll holds SQLite's lock logs the driver's
    words, not the statement and its parameters SQLAlchemy appends to them."""
    from sqlalchemy import text

    store = Store(store_url)
    try:
        with store.db.session() as s:
            s.execute(text("UPDATE no_such_table SET owner = :owner"), {"owner": "vm:1:2:abc"})
    except Exception as exc:
        said = store_error(exc)
        assert "no_such_table" in said and "\n" not in said
        assert "[SQL:" not in said and "vm:1:2:abc" not in said and "[SQL:" in str(exc)
    else:
        pytest.fail("the statement should have failed")
    finally:
        store.close()
