"""The store's sized statements (engine/store/bulk.py: insert_new_rows, where_in) on SQLite and
PostgreSQL: exact answers for any count of rows, values converted as SQLAlchemy would, and the ids
an insert reports as new are exactly those it wrote while another engine writes the same keys."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam
from sqlmodel import select

from provisioner.engine.store import Store
from provisioner.engine.store.bulk import insert_new_rows, where_in
from provisioner.engine.store.tables import Deferred, ProcessedEvent

pytestmark = pytest.mark.fast

PROCESSED = ProcessedEvent.__table__  # type: ignore[attr-defined]
DEFERRED = Deferred.__table__  # type: ignore[attr-defined]


def _rows(ids: list[str], at: datetime) -> list[dict[str, object]]:
    return [{"event_id": i, "outcome": "success", "processed_at": at} for i in ids]


def test_an_insert_returns_exactly_the_rows_it_wrote_for_any_count(store_url: str):
    store = Store(store_url)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = [f"e{n}" for n in range(0, 700, 3)]
    with store.unit() as s:
        assert insert_new_rows(s.connection(), PROCESSED, _rows(first, at), "event_id") == set(first)
    every = [f"e{n}" for n in range(700)]  # 512 + 128 + 32 + 16 + 8 + 4 rows: six statements
    with store.unit() as s:
        new = insert_new_rows(s.connection(), PROCESSED, _rows(every, at + timedelta(hours=1)), "event_id")
    assert new == set(every) - set(first)
    with store.db.session() as s:
        times = {row.event_id: row.processed_at for row in s.exec(select(ProcessedEvent)).all()}
    assert len(times) == 700
    # Stored as SQLAlchemy itself stores them: read back through the ORM, the first write kept.
    assert times["e0"].replace(tzinfo=UTC) == at and times["e1"].replace(tzinfo=UTC) == at + timedelta(hours=1)
    assert store.processed.among([*every, "unknown"]) == set(every)
    assert store.processed.among([]) == set()
    store.close()


def test_an_insert_racing_another_engine_reports_only_its_own_rows(store_url: str):
    """B writes keys A has written and not committed: B waits for A (SQLite's write lock,
    PostgreSQL's key lock) and then reports only the key nobody had."""
    store = Store(store_url)
    at = datetime(2026, 1, 2, tzinfo=UTC)
    answers: dict[str, set[object]] = {}

    def other_engine() -> None:
        with store.unit() as s:
            answers["b"] = insert_new_rows(s.connection(), PROCESSED, _rows(["b", "c"], at), "event_id")

    with store.unit() as s:
        answers["a"] = insert_new_rows(s.connection(), PROCESSED, _rows(["a", "b"], at), "event_id")
        racer = threading.Thread(target=other_engine)
        racer.start()  # blocks on A's uncommitted rows until the unit commits
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
