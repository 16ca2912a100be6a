"""the state each worker its source no longer lists left from: a re-hire is told against it

A worker's events are told against its stored state (the content hash and when it was stored), so
each distinct change has an id of its own. A worker removed had no stored state left, and a re-hire
reading exactly as its first hire did got that hire's id: dropped as its repeat while the first was
in flight, the removal applied last. `departed` keeps the state it left from.

Revision ID: 0015_departed_workers
Revises: 0014_outbox_seq_never_reused
Create Date: 2026-12-06 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_departed_workers"
down_revision: str | Sequence[str] | None = "0014_outbox_seq_never_reused"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "departed",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("worker_id", sa.String(), nullable=False),
        sa.Column("left_from", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "worker_id"),
    )


def downgrade() -> None:
    op.drop_table("departed")
