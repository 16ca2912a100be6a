"""identity: records joined to one person, and the values records are matched on (issue 28)

Revision ID: 0007_identity
Revises: 0005_console_sessions
Create Date: 2026-12-06 02:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_identity"
down_revision: str | Sequence[str] | None = "0006_approvals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity",
        sa.Column("worker_id", sa.String(), nullable=False),
        sa.Column("person_id", sa.String(), nullable=False),
        sa.Column("why", sa.String(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("person", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("worker_id"),
    )
    with op.batch_alter_table("identity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_person_id"), ["person_id"], unique=False)
    op.create_table(
        "identity_key",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("worker_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("key", "worker_id"),
    )
    with op.batch_alter_table("identity_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_key_worker_id"), ["worker_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identity_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_key_worker_id"))
    op.drop_table("identity_key")
    with op.batch_alter_table("identity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_person_id"))
    op.drop_table("identity")
