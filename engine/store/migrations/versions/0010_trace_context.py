"""traces: the provisioning log keeps each entry's trace id; failures and deferred actions keep the
trace context of the change that made them, so a retry's or a firing's trace links to it (issue 29)

Revision ID: 0010_trace_context
Revises: 0009_agent_requests
Create Date: 2026-12-06 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_trace_context"
down_revision: str | Sequence[str] | None = "0009_agent_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("logentry", "trace_id"), ("failure", "traceparent"), ("deferred", "traceparent"))


def upgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.String(), nullable=True))


def downgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
