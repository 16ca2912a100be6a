"""who waits for another person's account (issue 21)

Revision ID: 0004_awaiting_reference
Revises: 0003_target_profiles
Create Date: 2026-12-05 20:40:16.750874
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_awaiting_reference"
down_revision: str | Sequence[str] | None = "0003_target_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "awaiting_reference",
        sa.Column("worker_id", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", "target"),
    )
    with op.batch_alter_table("awaiting_reference", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_awaiting_reference_reference"), ["reference"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("awaiting_reference", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_awaiting_reference_reference"))

    op.drop_table("awaiting_reference")
