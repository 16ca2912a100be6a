"""The store's schema, brought to the latest Alembic revision when a store is opened.

Any number of engines may start together on one empty database: PostgreSQL runs the migration
under an advisory lock (the others wait, then find it done), SQLite under a lock file beside the
database. A database an older version created without Alembic (create_tables) is recognised by
its tables: it is brought up to date as before and stamped, and from then on migrates normally.
How to add a table or a column: engine/store/migrations/README.md."""

from __future__ import annotations

import fcntl
import logging
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

from provisioner.engine.store.db import create_tables, make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 0x70726F76  # "prov": one advisory lock key for the store's schema
_BEFORE_ALEMBIC = "outboxevent"  # a table every store had before migrations existed
# Alembic's own INFO lines are kept below WARNING by the CLI's logging setup (engine/cli/logs.py);
# what a migration did is said once, below (debug), when there was something to do.
log = logging.getLogger("provisioner.store")


def alembic_config(url: str | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    if _current_revision(engine) == latest_revision():
        return  # the usual case, told without loading Alembic (a third of a command's start-up)
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with _schema_lock(engine):
        names = set(inspect(engine).get_table_names())
        older = _BEFORE_ALEMBIC in names and "alembic_version" not in names
        if older:
            create_tables(engine)  # what older versions did: the tables and columns they lacked
            _outbox_in_flight(engine)
            _outbox_seq_never_reused(engine)
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            before = MigrationContext.configure(conn).get_current_revision()
            if older:
                command.stamp(config, "head")
            else:
                command.upgrade(config, "head")
            after = MigrationContext.configure(conn).get_current_revision()
        if after != before:
            how = "recognised as made before migrations and stamped" if older else "migrated"
            log.debug("store schema %s: %s -> %s", how, before or "empty", after)


@cache
def latest_revision() -> str:
    """The newest revision's id, read off the revision files (`revision` that no file revises)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text_ = path.read_text()
        revisions.update(_REVISION.findall(text_))
        revised.update(_DOWN_REVISION.findall(text_))
    heads = revisions - revised
    if len(heads) != 1:  # a branch: Alembic itself decides (and refuses it)
        return ""
    return heads.pop()


_REVISION = re.compile(r'^revision: str = "([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision: [^=]+= "([^"]+)"', re.MULTILINE)


def _outbox_in_flight(engine: Engine) -> None:
    """An outbox an older version kept: applied events stayed, marked `confirmed_at`, with indexes
    of their own, and their ids in a table of their own. This version deletes an event once applied,
    and an event not in the outbox is done (revisions 0012 and 0013 do the same)."""
    outbox = inspect(engine)
    if "processedevent" in outbox.get_table_names():
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE processedevent"))
    if "confirmed_at" not in {c["name"] for c in outbox.get_columns("outboxevent")}:
        return
    obsolete = {"ix_outboxevent_published_at", "ix_outboxevent_confirmed_at", "ix_outboxevent_worker_id"}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outboxevent WHERE confirmed_at IS NOT NULL"))
        for index in obsolete & {i["name"] for i in outbox.get_indexes("outboxevent")}:
            conn.execute(text(f"DROP INDEX {index}"))


def _outbox_seq_never_reused(engine: Engine) -> None:
    """An older SQLite outbox handed a deleted event's seq out again (revision 0014 does the same)."""
    if engine.dialect.name != "sqlite":
        return
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as conn:
        created = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'outboxevent'")).scalar() or ""
        if "AUTOINCREMENT" in created.upper():
            return
        operations = Operations(MigrationContext.configure(conn))
        table = {"sqlite_autoincrement": True}
        with operations.batch_alter_table("outboxevent", recreate="always", table_kwargs=table) as batch:
            del batch


def _current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # unreadable here: the migration's own path says why
        return None


def create_table_of(engine: Engine, table: Table) -> None:
    """A table a library defines and creates itself (APScheduler's job store), created under the
    schema lock: engines starting together on an empty database would otherwise race on its
    CREATE TABLE (checkfirst is a read, then a write) and all but one fail to start."""
    with _schema_lock(engine):
        table.create(engine, checkfirst=True)


def new_revision(message: str, rev_id: str) -> None:
    """Write the revision that takes the schema of the latest revision to the tables of
    engine/store/tables.py (autogenerated against a scratch SQLite database: review it)."""
    from alembic import command

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield  # one process owns an in-memory database
        return
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, even by a crash
        yield


if __name__ == "__main__":  # python -m provisioner.engine.store.migrate 0003_add_widgets "add the widget table"
    new_revision(sys.argv[2], sys.argv[1])
