"""an outbox seq is never handed out twice on SQLite (AUTOINCREMENT)

Without it SQLite gives a new row the largest rowid plus one, which after the newest events were
applied and deleted is the seq of one of them. The relay marks the rows it published by seq: a
consumer quick enough to record them before the mark, and a poll that adds an event meanwhile, and
the new event was marked published without being sent (it then waited for a relay lease to change
hands). PostgreSQL's sequence never reuses a number, so only SQLite's table is rebuilt.

Revision ID: 0014_outbox_seq_never_reused
Revises: 0013_applied_is_not_in_flight
Create Date: 2026-12-06 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_outbox_seq_never_reused"
down_revision: str | Sequence[str] | None = "0013_applied_is_not_in_flight"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Rebuilt with its rows (their seqs kept) and its indexes; SQLite's sequence starts past the largest.
    with op.batch_alter_table(
        "outboxevent", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ) as batch_op:
        del batch_op


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
