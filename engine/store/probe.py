"""Whether a store URL can work, found without changing anything: `validate` said ok for a
store.url that could not be opened. Nothing is created or migrated here."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError


def store_problem(url: str) -> str | None:
    """None when the store can be opened (or, for a new SQLite file, created); else why not."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "store.url is not a database URL (e.g. sqlite:///provisioner.db or postgresql://host/db)"
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_problem(parsed.database)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = create_engine(parsed, connect_args={"connect_timeout": 5} if "postgresql" in parsed.drivername else {})
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        return f"store.url cannot be used: {type(exc).__name__}"
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]
        return f"cannot open the store at {parsed.render_as_string(hide_password=True)}: {reason}"
    finally:
        engine.dispose()
    return None


def _sqlite_problem(database: str | None) -> str | None:
    if not database or database == ":memory:":
        return None
    path = Path(database)
    if not path.exists():
        parent = path.absolute().parent
        if not parent.is_dir():
            return f"the store's folder {parent} does not exist"
        return None if os.access(parent, os.W_OK) else f"the store file {path} cannot be created in {parent}"
    try:
        with sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master")
    except sqlite3.Error as exc:
        return f"cannot open the store file {path}: {exc}"
    return None
