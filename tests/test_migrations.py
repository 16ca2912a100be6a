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
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from provisioner.engine.runtime.scheduler import JOB_TABLE
from provisioner.engine.store import Store
from provisioner.engine.store.db import make_engine
from provisioner.engine.store.migrate import alembic_config, create_table_of, latest_revision

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
    older = [t for t in SQLModel.metadata.sorted_tables if t.name not in ADDED_SINCE_BASELINE]
    SQLModel.metadata.create_all(engine, tables=older)  # what create_tables of an older version left
    with engine.begin() as conn:  # and the table of applied ids those versions kept
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
    assert _version(store_url) == _head()
    Store(store_url).close()  # and opened again: nothing left to do
    engine.dispose()


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
