"""snapshots keep the digest of the record as read, so a streamed poll skips unchanged records (issue 26)

Revision ID: 0008_bulk_snapshots
Revises: 0005_console_sessions
Create Date: 2026-12-06 02:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_bulk_snapshots"
down_revision: str | Sequence[str] | None = "0007_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("snapshot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_digest", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshot", schema=None) as batch_op:
        batch_op.drop_column("record_digest")
