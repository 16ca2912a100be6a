"""Quarantined records of each source's latest poll: what `provisioner quarantine` lists and
`status` counts. A complete read replaces a source's list; a partial one (incremental, webhook)
replaces only the records it read."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from provisioner.engine.contracts.protocols import Quarantined
from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.db import Database, chunks, insert_rows
from provisioner.engine.store.tables import QuarantineRow


class Quarantine:
    def __init__(self, db: Database):
        self.db = db

    def replace(
        self, s: Session, source: str, items: Iterable[Quarantined], complete: bool, read_ids: Iterable[str] = ()
    ) -> None:
        """Inside a poll's unit of work: the source's quarantine becomes what this read found (a
        complete read: all of it; a partial one: the records it read)."""
        items = list(items)
        if complete:
            s.exec(delete(QuarantineRow).where(col(QuarantineRow.source) == source))
        else:
            touched = sorted({*read_ids, *(q.remote_id for q in items if q.remote_id)})
            for chunk in chunks(touched):
                s.exec(
                    delete(QuarantineRow).where(
                        col(QuarantineRow.source) == source, col(QuarantineRow.remote_id).in_(chunk)
                    )
                )
        if items:
            now = utcnow()
            insert_rows(
                s,
                QuarantineRow,
                [
                    {"source": source, "remote_id": q.remote_id, "line": q.line, "reason": q.reason, "at": now}
                    for q in items
                ],
            )

    def records(self, source: str | None = None) -> list[QuarantineRow]:
        with self.db.session() as s:
            query = select(QuarantineRow).order_by(col(QuarantineRow.source), col(QuarantineRow.id))
            if source is not None:
                query = query.where(col(QuarantineRow.source) == source)
            return list(s.exec(query).all())

    def counts(self) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(select(QuarantineRow.source, func.count()).group_by(col(QuarantineRow.source))).all()
        return {source: int(n) for source, n in rows}
