"""an event is applied when it is no longer in the outbox: the table of applied event ids goes
(issue 26)

Recording an outcome deletes the event from the outbox in the same unit of work, and the consumer
asks the outbox which events are still in flight. Since 0012 the outbox holds nothing else, so a
second table answering the same question only grew by a row per event (a million for a first
sync of a million people).

Revision ID: 0013_applied_is_not_in_flight
Revises: 0012_outbox_in_flight
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_applied_is_not_in_flight"
down_revision: str | Sequence[str] | None = "0012_outbox_in_flight"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("processedevent")


def downgrade() -> None:
    # Empty: which events were applied is not kept. A version that reads this table re-plans an
    # event Kafka delivers again, as it would one it had never seen.
    op.create_table(
        "processedevent",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
