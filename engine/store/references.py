"""People waiting for another person's account (a manager's) to exist in a target, so that the
reference to it can be written. Recorded with the outcomes that make or miss those accounts, in
their transaction: a person is re-planned (through the outbox) once the account is there, and a
`sync --once` waits for that re-plan like any other event."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from provisioner.engine.contracts.events import REFERENCE_SOURCE, WorkerEvent, internal_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome, utcnow
from provisioner.engine.store.db import Database, as_utc, chunks, insert_rows
from provisioner.engine.store.outbox import enqueue
from provisioner.engine.store.tables import AwaitingReference, LinkRow, Snapshot

log = logging.getLogger("provisioner.engine")

Waiting = tuple[str, str, str]  # (worker id, target, the worker id it names)


class References:
    def __init__(self, db: Database):
        self.db = db

    def record(self, s: Session, outcomes: list[EventOutcome]) -> None:
        """Inside the transaction recording a batch (after its links): each person planned waits for
        what their plan could not resolve, and nothing else; whoever waits for an account that now
        exists is re-planned. Each new wait is logged once."""
        planned = {o.event.subject for o in outcomes if o.unresolved is not None and o.event is not None}
        # One wait per person and target (the last named wins).
        missing = {
            (o.event.subject, target): (o.event.subject, target, reference)
            for o in outcomes
            if o.event is not None
            for target, reference in o.unresolved or []
        }
        if not missing and s.exec(select(AwaitingReference.worker_id).limit(1)).first() is None:
            return  # the common case: everyone's manager resolved, nobody waits
        made = {(link.worker_id, link.target) for o in outcomes for link in o.links}
        before: set[Waiting] = set()
        for chunk in chunks(sorted(planned)):
            rows = s.exec(select(AwaitingReference).where(col(AwaitingReference.worker_id).in_(chunk))).all()
            before |= {(r.worker_id, r.target, r.reference) for r in rows}
            s.exec(delete(AwaitingReference).where(col(AwaitingReference.worker_id).in_(chunk)))
        # An account recorded after a plan missed it (by this batch, or an earlier one): no wait.
        linked = _linked(s, {(r, t) for _, t, r in missing.values()})
        released = [w for w in missing.values() if (w[2], w[1]) in linked]
        waits = [w for w in missing.values() if (w[2], w[1]) not in linked]
        if waits:
            now = utcnow()
            rows_ = [{"worker_id": w, "target": t, "reference": r, "since": now} for w, t, r in waits]
            insert_rows(s, AwaitingReference, rows_)
        for chunk in chunks(sorted({worker for worker, _ in made})):
            for row in s.exec(select(AwaitingReference).where(col(AwaitingReference.reference).in_(chunk))).all():
                if (row.reference, row.target) in made:
                    released.append((row.worker_id, row.target, row.reference))
                    s.delete(row)
        for worker_id, target, reference in waits:
            if (worker_id, target, reference) not in before:
                log.warning(
                    "%s names %s (manager) who has no account in %s yet: written once they have one",
                    worker_id,
                    reference,
                    target,
                    extra={"worker_id": worker_id, "target": target},
                )
        enqueue(s, _replans(s, released))

    def waiting(self, worker_id: str | None = None) -> list[tuple[str, str, str, datetime]]:
        """(worker, target, the worker it names, since) for each wait, or this worker's."""
        with self.db.session() as s:
            query = select(AwaitingReference).order_by(col(AwaitingReference.worker_id))
            if worker_id is not None:
                query = query.where(AwaitingReference.worker_id == worker_id)
            return [(r.worker_id, r.target, r.reference, as_utc(r.since)) for r in s.exec(query).all()]


def _linked(s: Session, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for chunk in chunks(sorted({worker for worker, _ in wanted})):
        rows = s.exec(select(LinkRow.worker_id, LinkRow.target).where(col(LinkRow.worker_id).in_(chunk))).all()
        found |= {(w, t) for w, t in rows if (w, t) in wanted}
    return found


def _replans(s: Session, released: list[Waiting]) -> list[WorkerEvent]:
    """One re-planning event per person released, from their current snapshot."""
    named: dict[str, list[str]] = {}
    for worker_id, target, reference in released:
        named.setdefault(worker_id, []).append(f"{reference}@{target}")
    events = []
    for chunk in chunks(sorted(named)):
        for row in s.exec(select(Snapshot).where(col(Snapshot.worker_id).in_(chunk))).all():
            key = ",".join(sorted(named[row.worker_id]))
            events.append(internal_event(REFERENCE_SOURCE, row.worker_id, Worker.model_validate(row.worker), key))
    return events
