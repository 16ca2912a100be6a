"""approval requests someone makes: provision now, retry, access outside the policies (issue 29)

Revision ID: 0009_agent_requests
Revises: 0008_bulk_snapshots
Create Date: 2026-12-06 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_agent_requests"
down_revision: str | Sequence[str] | None = "0008_bulk_snapshots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows made before this are a policy's grants: server_default fills them in.
    with op.batch_alter_table("approval_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(), nullable=False, server_default="grant"))
        batch_op.add_column(sa.Column("requested_by", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("request_reason", sa.String(), nullable=True))
        batch_op.alter_column("worker_id", existing_type=sa.String(), nullable=True)
        batch_op.alter_column("target", existing_type=sa.String(), nullable=True)


def downgrade() -> None:
    # A request about no one person or no one target has no place in the older table.
    op.execute("DELETE FROM approval_request WHERE worker_id IS NULL OR target IS NULL")
    with op.batch_alter_table("approval_request", schema=None) as batch_op:
        batch_op.alter_column("target", existing_type=sa.String(), nullable=False)
        batch_op.alter_column("worker_id", existing_type=sa.String(), nullable=False)
        batch_op.drop_column("request_reason")
        batch_op.drop_column("requested_by")
        batch_op.drop_column("kind")
