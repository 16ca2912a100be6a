"""People waiting for another person's account (a manager's) to exist in a target, so that the
reference to it can be written: kept in the store, so every engine process and command sees them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.db import Database, as_utc, chunks, insert_rows
from provisioner.engine.store.tables import AwaitingReference, LinkRow

Waiting = tuple[str, str, str]  # (worker id, target, the worker id it names)


class References:
    def __init__(self, db: Database):
        self.db = db

    def settle(
        self, planned: Iterable[str], missing: Iterable[Waiting], created: Iterable[tuple[str, str]]
    ) -> tuple[list[Waiting], list[Waiting]]:
        """After a batch is recorded: the people it planned wait for what their plan could not
        resolve (and nothing else); those waiting for an account the batch created are released.
        Returns (the waits that are new, the waits released), in one transaction."""
        # One wait per person and target (the last named wins), and whoever waits was planned.
        missing = sorted({(w, t): (w, t, r) for w, t, r in missing}.values())
        planned = sorted({*planned, *(w for w, _, _ in missing)})
        with self.db.session() as s:
            if not missing and s.exec(select(AwaitingReference.worker_id).limit(1)).first() is None:
                return [], []  # the common case, a first sync of people whose managers resolve: one read
            before: set[Waiting] = set()
            for chunk in chunks(planned):
                rows = s.exec(select(AwaitingReference).where(col(AwaitingReference.worker_id).in_(chunk))).all()
                before |= {(r.worker_id, r.target, r.reference) for r in rows}
                if rows:
                    s.exec(delete(AwaitingReference).where(col(AwaitingReference.worker_id).in_(chunk)))
            # An account recorded after the plan missed it, but before this outcome was: no wait.
            made = set(created) | self._linked(s, {(r, t) for _, t, r in missing})
            released = [w for w in missing if (w[2], w[1]) in made]
            waits = [w for w in missing if (w[2], w[1]) not in made]
            if waits:
                now = utcnow()
                rows_ = [{"worker_id": w, "target": t, "reference": r, "since": now} for w, t, r in waits]
                insert_rows(s, AwaitingReference, rows_)
            for chunk in chunks(sorted({ref for ref, _ in made})):
                query = select(AwaitingReference).where(col(AwaitingReference.reference).in_(chunk))
                for row in s.exec(query).all():
                    if (row.reference, row.target) in made:
                        released.append((row.worker_id, row.target, row.reference))
                        s.delete(row)
        return [w for w in waits if w not in before], released

    @staticmethod
    def _linked(s: Session, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for chunk in chunks(sorted({worker for worker, _ in wanted})):
            rows = s.exec(select(LinkRow.worker_id, LinkRow.target).where(col(LinkRow.worker_id).in_(chunk))).all()
            found |= {(w, t) for w, t in rows if (w, t) in wanted}
        return found

    def waiting(self, worker_id: str | None = None) -> list[tuple[str, str, str, datetime]]:
        """(worker, target, the worker it names, since) for each wait, or this worker's."""
        with self.db.session() as s:
            query = select(AwaitingReference).order_by(col(AwaitingReference.worker_id))
            if worker_id is not None:
                query = query.where(AwaitingReference.worker_id == worker_id)
            return [(r.worker_id, r.target, r.reference, as_utc(r.since)) for r in s.exec(query).all()]
