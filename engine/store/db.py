"""The database: an engine for any SQLAlchemy URL (SQLite by default, PostgreSQL unchanged for
scale-out), sessions, and the bulk-write helpers every repository shares."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, create_engine

from provisioner.engine.store.bulk import insert_chunk


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the relay read while the consumer writes; NORMAL sync is durable across app crashes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Store calls run in worker threads, so writers can queue for the lock; a first poll of
    # 100,000 people holds it for seconds.
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


class RawJSON(str):
    """A JSON column's value that is JSON text already (pydantic-core serialized it, several times
    faster than the dict and `json.dumps` round trip): stored as it is."""


def _to_json(value: Any) -> str:
    return value if isinstance(value, RawJSON) else json.dumps(value)


def _private_file(database: str | None) -> None:
    """Create a new SQLite file readable by its owner only: it holds personal data. SQLite gives
    its journal, WAL and shared-memory files the database file's mode."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(OSError):  # it exists (its mode is the operator's), or SQLite will say why not
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _private_file(parsed.database)
        engine = create_engine(url, connect_args={"check_same_thread": False}, json_serializer=_to_json)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    if parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    return create_engine(url, pool_pre_ping=True, json_serializer=_to_json)


class Database:
    """One engine and its sessions; every repository of a store shares it."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)

    @contextmanager
    def session(self, within: Session | None = None) -> Iterator[Session]:
        """A new session, committed when the block ends; or, `within` a caller's unit of work, that
        session as it is (the caller's transaction commits it, or rolls it back)."""
        if within is not None:
            yield within
            return
        with Session(self.engine, expire_on_commit=False) as session:
            yield session
            session.commit()


def store_error(exc: BaseException) -> str:
    """A store error in one line for a log: the driver's own words ("database is locked") without
    the statement and parameters SQLAlchemy appends (a heartbeat's whole UPDATE, every few seconds
    while a large poll holds SQLite's write lock)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        said = str(exc.orig).strip().splitlines()
        return f"{type(exc.orig).__name__}: {said[0]}" if said else type(exc.orig).__name__
    return str(exc)


def as_utc(moment: datetime) -> datetime:
    """Stored times are UTC, so that SQLite and PostgreSQL compare them alike."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


_GENERATED = {"id", "seq"}  # autoincrement keys the database assigns


def columns(table: type[SQLModel], values: dict[str, Any]) -> dict[str, Any]:
    """A row for a Core insert: the table's columns from `values`, leaving generated keys unset."""
    names = table.__table__.columns.keys()  # type: ignore[attr-defined]
    return {k: values.get(k) for k in names if values.get(k) is not None or k not in _GENERATED}


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[list[Any]]:
    """Bounded IN lists: SQLite and PostgreSQL both cap how many parameters one statement takes."""
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def insert_rows(
    s: Session, table: type[SQLModel], rows: Iterable[dict[str, Any]], size: int = 2000, *, skip_existing: bool = False
) -> None:
    """Executemany inserts, `size` rows at a time, handed to the driver as they are (bulk.py); a
    lazy `rows` is built one chunk at a time (a 100,000-worker first poll would otherwise hold every
    row's JSON at once). `skip_existing`: rows whose unique key is taken are left out."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        insert_chunk(s.connection(), table.__table__, chunk, skip_existing=skip_existing)  # type: ignore[attr-defined]


def dialect_insert(s: Session, table: type[SQLModel]) -> Any:
    """An INSERT of this session's dialect, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_new(s: Session, table: type[SQLModel], rows: list[dict[str, Any]], key: str) -> set[Any]:
    """INSERT … ON CONFLICT DO NOTHING; returns the `key` values of the rows it did insert (a row
    another engine wrote first is left as it is, without failing the transaction)."""
    if not rows:
        return set()
    column = table.__table__.columns[key]  # type: ignore[attr-defined]
    statement = dialect_insert(s, table).on_conflict_do_nothing().returning(column)
    # Rows as parameters, not `.values(rows)`: SQLAlchemy's insertmanyvalues batches them into
    # multi-row statements from one cached compilation, where `.values()` compiled every row's
    # parameters anew on each call (a tenth of a first sync's CPU).
    return set(s.connection().execute(statement, rows).scalars())


def create_tables(engine: Engine) -> None:
    """New tables, and new columns and indexes on tables an older version created: `create_all`
    alone leaves an existing table as it was, and the first query naming a new column would fail."""
    SQLModel.metadata.create_all(engine)
    existing = inspect(engine)
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            have = {c["name"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    # Added as nullable: rows written before the upgrade have no value for it.
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
            indexed = {i["name"] for i in existing.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in indexed:
                    index.create(conn, checkfirst=True)
