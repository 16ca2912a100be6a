"""approvals: one pending request per thing asked (kind, person, grant key), whoever asks; duplicates
an older version let two engines or two agents open are closed as void first (issue 22, 29)

Revision ID: 0011_one_pending_request
Revises: 0010_trace_context
Create Date: 2026-12-06 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011_one_pending_request"
down_revision: str | Sequence[str] | None = "0010_trace_context"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_approval_request_pending"
PENDING_OPEN = "state = 'pending' AND ended_at IS NULL"


def upgrade() -> None:
    # The oldest of each set of duplicates stays pending; the others are history, as a void request is.
    op.get_bind().execute(
        sa.text(
            "UPDATE approval_request SET state = 'void', ended_at = :now, decided_at = :now, "
            "reason = 'a duplicate of an earlier request for the same thing' "
            f"WHERE {PENDING_OPEN} AND EXISTS (SELECT 1 FROM approval_request AS first "
            "WHERE first.state = 'pending' AND first.ended_at IS NULL AND first.kind = approval_request.kind "
            "AND first.key = approval_request.key AND first.worker_id = approval_request.worker_id "
            "AND (first.requested_at < approval_request.requested_at "
            "OR (first.requested_at = approval_request.requested_at AND first.id < approval_request.id)))"
        ),
        {"now": datetime.now(UTC)},
    )
    op.create_index(
        INDEX,
        "approval_request",
        ["kind", "worker_id", "key"],
        unique=True,
        sqlite_where=sa.text(PENDING_OPEN),
        postgresql_where=sa.text(PENDING_OPEN),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="approval_request")
