"""The store's sized statements (engine/store/bulk.py: where_in) on SQLite and PostgreSQL: exact
answers for any count of values, values converted as SQLAlchemy would, and the events a confirmation
reports as deleted are exactly those it deleted while another engine confirms the same ones."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam
from sqlmodel import select

from provisioner.engine.store import Store
from provisioner.engine.store.bulk import where_in
from provisioner.engine.store.tables import Deferred
from tests.conftest import in_flight

pytestmark = pytest.mark.fast

DEFERRED = Deferred.__table__  # type: ignore[attr-defined]


def test_a_confirmation_returns_exactly_the_events_it_deleted_for_any_count(store_url: str):
    store = Store(store_url)
    every = [f"e{n}" for n in range(700)]  # five full statements of 128 and one padded
    in_flight(store, *every)
    first = [f"e{n}" for n in range(0, 700, 3)]
    with store.unit() as s:
        assert store.outbox.confirm(s, first) == set(first)
    with store.unit() as s:
        assert store.outbox.confirm(s, [*every, "unknown"]) == set(every) - set(first)
    assert store.outbox.applied([*every, "unknown"]) == {*every, "unknown"}
    assert store.outbox.applied([]) == set()
    store.close()


def test_a_confirmation_racing_another_engine_reports_only_its_own_events(store_url: str):
    """B confirms events A has deleted and not committed: B waits for A (SQLite's write lock,
    PostgreSQL's row lock) and then reports only the event A did not take."""
    store = Store(store_url)
    in_flight(store, "a", "b", "c")
    answers: dict[str, set[str]] = {}

    def other_engine() -> None:
        with store.unit() as s:
            answers["b"] = store.outbox.confirm(s, ["b", "c"])

    with store.unit() as s:
        answers["a"] = store.outbox.confirm(s, ["a", "b"])
        racer = threading.Thread(target=other_engine)
        racer.start()  # blocks on A's uncommitted deletes until the unit commits
    racer.join(timeout=30)
    assert not racer.is_alive()
    assert answers == {"a": {"a", "b"}, "b": {"c"}}
    store.close()


def test_a_statement_over_an_in_list_reaches_every_value_and_converts_the_others(store_url: str):
    store = Store(store_url)
    at = datetime(2026, 5, 1, tzinfo=UTC)
    row = {"target": "app", "action": "create", "effective_at": at, "reason": "", "created_at": at}
    rows = [{**row, "worker_id": f"hr:{n}"} for n in range(600)]
    with store.unit() as s:
        s.connection().execute(DEFERRED.insert(), rows)
    gone = [f"hr:{n}" for n in range(0, 600, 2)] + ["hr:unknown"]
    with store.unit() as s:
        where_in(s.connection(), "test.delete", DEFERRED.delete().where, DEFERRED.c.worker_id, gone)
    left = {row.worker_id for row in store.schedule.deferred()}
    assert left == {f"hr:{n}" for n in range(1, 600, 2)}
    later = at + timedelta(days=1)
    move = DEFERRED.update().values(effective_at=bindparam("when", type_=DEFERRED.c.effective_at.type))
    with store.unit() as s:
        where_in(s.connection(), "test.move", move.where, DEFERRED.c.worker_id, ["hr:1", "hr:3"], {"when": later})
    moved = {row.worker_id for row in store.schedule.deferred() if row.effective_at.replace(tzinfo=UTC) == later}
    assert moved == {"hr:1", "hr:3"}
    with store.unit() as s:
        found = where_in(s.connection(), "test.select", select(DEFERRED.c.worker_id).where, DEFERRED.c.worker_id, [])
    assert found == []
    store.close()
