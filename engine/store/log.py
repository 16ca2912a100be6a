"""The provisioning log: what was done to whom, why, and with what result."""

from __future__ import annotations

from sqlmodel import Session, col, select

from provisioner.engine.contracts.records import LogEntry
from provisioner.engine.store.db import Database, columns, insert_rows
from provisioner.engine.store.tables import LogRow


class ProvisioningLog:
    def __init__(self, db: Database):
        self.db = db

    def append(self, entries: list[LogEntry], s: Session | None = None) -> None:
        if entries:
            with self.db.session(s) as session:
                insert_rows(session, LogRow, [columns(LogRow, dict(e)) for e in entries])

    def recent(self, worker_id: str | None = None, limit: int = 100) -> list[LogEntry]:
        with self.db.session() as s:
            query = select(LogRow).order_by(col(LogRow.id).desc()).limit(limit)
            if worker_id:
                query = query.where(LogRow.worker_id == worker_id)
            rows = s.exec(query).all()
        return [LogEntry.model_validate(r, from_attributes=True) for r in reversed(rows)]
