"""Alembic's environment for the store's schema: run by `migrate()` (engine/store/migrate.py) with
the connection it holds under its lock, or by the `alembic` CLI given `sqlalchemy.url`."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import DateTime
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from provisioner.engine.store import tables  # noqa: F401  (the models register their tables)
from provisioner.engine.store.db import make_engine


def _render_item(kind: str, obj: Any, _context: Any) -> str | Literal[False]:
    """SQLModel's column types written as the plain SQLAlchemy ones they create, so a revision
    does not depend on the version of sqlmodel that wrote it."""
    if kind == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    if kind == "type" and isinstance(obj, DateTime) and obj.timezone:
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
connection = config.attributes.get("connection")


def _run(conn: Any) -> None:
    # batch mode: SQLite alters a table by copying it, which its ALTER TABLE otherwise cannot.
    context.configure(
        connection=conn, target_metadata=SQLModel.metadata, render_as_batch=True, render_item=_render_item
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    with make_engine(config.get_main_option("sqlalchemy.url") or "").connect() as conn:
        _run(conn)
