"""the learned profile of each app (issue 21)

Revision ID: 0003_target_profiles
Revises: 0002_claims_engines
Create Date: 2026-12-05 20:39:39.359538
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_target_profiles"
down_revision: str | Sequence[str] | None = "0002_claims_engines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "target_profile",
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target"),
    )


def downgrade() -> None:
    op.drop_table("target_profile")
