"""the outbox holds only events in flight: applied events are deleted (their outcome is in
processedevent), and its indexes are the relay's one partial index (issue 26)

Revision ID: 0012_outbox_in_flight
Revises: 0011_one_pending_request
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_outbox_in_flight"
down_revision: str | Sequence[str] | None = "0011_one_pending_request"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPUBLISHED = "published_at IS NULL"
OLD_INDEXES = ("ix_outboxevent_unpublished", "ix_outboxevent_published_at", "ix_outboxevent_confirmed_at")


def upgrade() -> None:
    op.execute("DELETE FROM outboxevent WHERE confirmed_at IS NOT NULL")
    for name in OLD_INDEXES:
        op.drop_index(name, table_name="outboxevent")
    op.drop_index("ix_outboxevent_worker_id", table_name="outboxevent")
    with op.batch_alter_table("outboxevent", schema=None) as batch_op:
        batch_op.drop_column("confirmed_at")
    op.create_index(
        "ix_outboxevent_unpublished",
        "outboxevent",
        ["seq"],
        sqlite_where=sa.text(UNPUBLISHED),
        postgresql_where=sa.text(UNPUBLISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_outboxevent_unpublished", table_name="outboxevent")
    with op.batch_alter_table("outboxevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_outboxevent_worker_id", "outboxevent", ["worker_id"])
    op.create_index("ix_outboxevent_published_at", "outboxevent", ["published_at"])
    op.create_index("ix_outboxevent_confirmed_at", "outboxevent", ["confirmed_at"])
    op.create_index("ix_outboxevent_unpublished", "outboxevent", ["published_at", "confirmed_at"])
