"""The store's schema is Alembic's (SQLite and PostgreSQL): migrations equal the models, a database
an older version made with create_tables is recognised and brought up to date, and engines starting
together on one empty database all come up."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

from provisioner.engine.runtime.scheduler import JOB_TABLE
from provisioner.engine.store import Store
from provisioner.engine.store.db import make_engine
from provisioner.engine.store.migrate import alembic_config, create_table_of, latest_revision
from tests.conftest import in_flight

pytestmark = pytest.mark.fast

ADDED_SINCE_BASELINE = ("eventclaim", "targetclaim", "engine")


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _version(url: str) -> str | None:
    engine = make_engine(url)
    with engine.connect() as conn:
        version = MigrationContext.configure(conn).get_current_revision()
    engine.dispose()
    return version


def test_the_migrations_build_exactly_the_tables_of_the_models(store_url: str):
    """Fails when a table or column is added to engine/store/tables.py without a revision: see
    engine/store/migrations/README.md for the one command that writes it."""
    Store(store_url).close()
    engine = make_engine(store_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert differences == []
    assert _version(store_url) == _head()


def test_a_database_made_before_migrations_is_recognised_and_upgraded(store_url: str):
    engine = make_engine(store_url)
    sqlite = store_url.startswith("sqlite")
    older = [t for t in SQLModel.metadata.sorted_tables if t.name not in ADDED_SINCE_BASELINE]
    older = [t for t in older if not (sqlite and t.name == "outboxevent")]
    SQLModel.metadata.create_all(engine, tables=older)  # what create_tables of an older version left
    with engine.begin() as conn:  # and the table of applied ids those versions kept
        if sqlite:  # and their outbox, whose seq SQLite handed out again once deleted
            conn.execute(text(OLD_SQLITE_OUTBOX))
        conn.execute(text("CREATE TABLE processedevent (event_id VARCHAR PRIMARY KEY, outcome VARCHAR)"))
        conn.execute(text("INSERT INTO processedevent VALUES ('e1', 'success')"))
        conn.execute(
            text(
                "INSERT INTO outboxevent (event_id, worker_id, payload, created_at) "
                "VALUES ('e2', 'hr:2', '{}', '2026-01-01')"
            )
        )
    store = Store(store_url)
    assert store.outbox.applied(["e1", "e2"]) == {"e1"}  # the event in flight is kept
    assert "processedevent" not in inspect(engine).get_table_names()  # an event not in flight is done
    assert set(ADDED_SINCE_BASELINE) <= set(inspect(engine).get_table_names())
    assert store.claims.take(["e2"], "a:1:1:x", 60).mine == {"e2"}
    store.close()
    if sqlite:
        with engine.connect() as conn:
            assert "AUTOINCREMENT" in _outbox_sql(conn)
    assert _version(store_url) == _head()
    Store(store_url).close()  # and opened again: nothing left to do
    engine.dispose()


OLD_SQLITE_OUTBOX = """CREATE TABLE outboxevent (
    seq INTEGER NOT NULL, event_id VARCHAR NOT NULL, worker_id VARCHAR NOT NULL, payload JSON NOT NULL,
    created_at DATETIME NOT NULL, published_at DATETIME, confirmed_at DATETIME, PRIMARY KEY (seq), UNIQUE (event_id))"""


def _all_at_once(step: Callable[[], None], n: int = 4) -> None:
    """`n` threads wait for one another, then each runs `step` at the same moment; none may fail."""
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            step()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def test_engines_starting_together_on_an_empty_database_all_come_up(store_url: str):
    def open_store() -> None:
        store = Store(store_url)
        store.outbox.pending_count()
        store.close()

    _all_at_once(open_store)
    assert _version(store_url) == _head()


def test_engines_starting_together_all_create_the_scheduler_table(store_url: str):
    """APScheduler's job table is created by the library on start (a checkfirst read, then a CREATE):
    engines starting together raced on it and all but one exited; under the schema lock all come up."""
    store = Store(store_url)
    jobs = SQLAlchemyJobStore(engine=store.engine, tablename=JOB_TABLE)
    _all_at_once(lambda: create_table_of(store.engine, jobs.jobs_t))
    assert JOB_TABLE in inspect(store.engine).get_table_names()
    store.close()


def test_a_store_at_the_latest_revision_opens_without_loading_alembic(tmp_path):
    """The newest revision is read off the revision files, as Alembic reads it; a store already
    there is opened without importing Alembic (a third of every command's start-up)."""
    assert latest_revision() == _head()
    url = f"sqlite:///{tmp_path / 's.db'}"
    Store(url).db.engine.dispose()  # created and migrated: at the head now
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; from provisioner.engine.store import Store; Store({url!r}); print('alembic' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert opened.stdout.strip() == "False"


def test_an_outbox_upgraded_keeps_only_the_events_in_flight(store_url: str):
    """Revisions 0012 and 0013: applied events (marked confirmed before, their ids in a table of
    their own) are deleted; the one in flight stays and is published again, and it alone is not
    applied; a downgrade gives the old columns and table back."""
    from alembic import command

    engine = make_engine(store_url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0011_one_pending_request")
        conn.execute(
            text(
                "INSERT INTO outboxevent (seq, event_id, worker_id, payload, created_at, published_at, confirmed_at) "
                "VALUES (1, 'done', 'hr:1', '{}', '2026-01-01', '2026-01-01', '2026-01-01'), "
                "(2, 'in-flight', 'hr:2', '{}', '2026-01-01', '2026-01-01', NULL)"
            )
        )
        conn.execute(text("INSERT INTO processedevent VALUES ('done', 'success', '2026-01-01')"))
    store = Store(store_url)
    assert store.outbox.pending_count() == 1
    assert store.outbox.applied(["done", "in-flight"]) == {"done"}
    assert "processedevent" not in inspect(engine).get_table_names()
    assert store.outbox.requeue_unconfirmed() == 1
    assert [row.event_id for row in store.outbox.unpublished(10)] == ["in-flight"]
    store.close()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0011_one_pending_request")
    assert "confirmed_at" in {c["name"] for c in inspect(engine).get_columns("outboxevent")}
    assert "processedevent" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_new_outbox_event_never_takes_the_seq_of_one_applied_and_deleted(store_url: str):
    """The relay marks what it published by seq; a consumer can record those events first. Had a
    new event the seq of one of them (SQLite reuses the largest rowid once deleted), the relay's
    mark would take it for published, unsent."""
    store = Store(store_url)
    in_flight(store, "a", "b")
    seqs = [row.seq for row in store.outbox.unpublished(10)]  # the relay reads, then publishes
    with store.unit() as s:  # the consumer records both before the relay marks them
        assert store.outbox.confirm(s, ["a", "b"]) == {"a", "b"}
    in_flight(store, "new")  # a poll commits a new event
    store.outbox.mark_published(seqs)
    [left] = store.outbox.unpublished(10)
    assert left.event_id == "new" and left.seq > max(seqs)
    store.close()


def test_revision_0014_rebuilds_an_outbox_that_reused_seqs_with_its_events(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = make_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0013_applied_is_not_in_flight")
        assert "AUTOINCREMENT" not in _outbox_sql(conn)
        conn.execute(
            text(
                "INSERT INTO outboxevent (seq, event_id, worker_id, payload, created_at) "
                "VALUES (10, 'x', 'hr:1', '{}', '2026-01-01'), (11, 'y', 'hr:2', '{}', '2026-01-01')"
            )
        )
    store = Store(url)  # migrated to the head as it opens
    with engine.connect() as conn:
        assert "AUTOINCREMENT" in _outbox_sql(conn)
    assert [(row.seq, row.event_id) for row in store.outbox.unpublished(10)] == [(10, "x"), (11, "y")]
    with store.unit() as s:
        store.outbox.confirm(s, ["y"])
    in_flight(store, "z")
    assert [(row.seq, row.event_id) for row in store.outbox.unpublished(10)] == [(10, "x"), (12, "z")]
    assert "ix_outboxevent_unpublished" in {i["name"] for i in inspect(engine).get_indexes("outboxevent")}
    store.close()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0013_applied_is_not_in_flight")
        assert "AUTOINCREMENT" not in _outbox_sql(conn)
        assert conn.execute(text("SELECT seq, event_id FROM outboxevent")).all() == [(10, "x"), (12, "z")]
    engine.dispose()


def _outbox_sql(conn: Connection) -> str:
    return conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'outboxevent'")).scalar() or ""
