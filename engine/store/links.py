"""Links (worker ↔ account per target): what each worker holds in each app, as the engine last
confirmed it. Written inside the unit of work that records the outcomes moving them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.records import Link, LinkKey
from provisioner.engine.store.db import Database, chunks, columns, insert_rows
from provisioner.engine.store.outbox import enqueue
from provisioner.engine.store.tables import LinkRow

_LINK_COLUMNS = tuple(LinkRow.__table__.columns)  # type: ignore[attr-defined]


class Links:
    def __init__(self, db: Database):
        self.db = db

    def _select(self, *where: Any) -> list[Link]:
        # Plain column rows: building ORM objects first would double the cost of a 10k-link read.
        with self.db.session() as s:
            rows = s.execute(select(*_LINK_COLUMNS).where(*where)).mappings().all()
        return [Link.model_construct(**row) for row in rows]

    def for_workers(self, worker_ids: Iterable[str]) -> dict[LinkKey, Link]:
        ids = list(worker_ids)
        found: list[Link] = []
        for chunk in chunks(ids):
            found += self._select(col(LinkRow.worker_id).in_(chunk))
        return {(r.worker_id, r.target): r for r in found}

    def all(self, target: str | None = None) -> list[Link]:
        return self._select(*(() if target is None else (col(LinkRow.target) == target,)))

    def reconcile(self, upserts: list[Link], removals: list[LinkKey], events: list[WorkerEvent]) -> None:
        """The reconciler's view of reality replaces stored links, and its events go out, together."""
        with self.db.session() as s:
            self.remove(s, removals)
            self.upsert(s, upserts)
            enqueue(s, events)

    def upsert(self, s: Session, links: list[Link]) -> None:
        """Each link replaces the stored one of its worker and target (delete + insert, not a
        per-row merge: one statement per chunk whatever the batch holds)."""
        self.remove(s, [(link.worker_id, link.target) for link in links])
        if links:
            insert_rows(s, LinkRow, [columns(LinkRow, dict(link)) for link in links])

    def remove(self, s: Session, keys: list[LinkKey]) -> None:
        for target in {t for _, t in keys}:
            for chunk in chunks([w for w, t in keys if t == target]):
                s.exec(delete(LinkRow).where(col(LinkRow.target) == target, col(LinkRow.worker_id).in_(chunk)))
