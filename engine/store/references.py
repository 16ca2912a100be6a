"""People waiting for another person's account (a manager's) to exist in a target, so that the
reference to it can be written. Recorded with the outcomes that make or miss those accounts, in
their unit of work: a person is re-planned (the Apply use case puts `replans` in the outbox) once the
account is there, and a `sync --once` waits for that re-plan like any other event."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from provisioner.engine.contracts.events import REFERENCE_SOURCE, WorkerEvent, internal_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome, utcnow
from provisioner.engine.store.db import Database, as_utc, chunks, insert_rows
from provisioner.engine.store.tables import AwaitingReference, LinkRow, Snapshot

log = logging.getLogger("provisioner.engine")

Waiting = tuple[str, str, str]  # (worker id, target, the worker id it names)


class References:
    def __init__(self, db: Database):
        self.db = db

    def wait(self, s: Session, outcomes: list[EventOutcome]) -> list[Waiting]:
        """In the unit of work recording a batch, after its links: each person planned waits for
        what their plan could not resolve, and nothing else. Returns the waits over already (the
        account was recorded after the plan missed it, by this batch or an earlier one). Each new
        wait is logged once."""
        planned = {o.event.subject for o in outcomes if o.unresolved is not None and o.event is not None}
        # One wait per person and target (the last named wins).
        missing = {
            (o.event.subject, target): (o.event.subject, target, reference)
            for o in outcomes
            if o.event is not None
            for target, reference in o.unresolved or []
        }
        if not missing and _nobody_waits(s):
            return []  # the common case: everyone's manager resolved, nobody waits
        before: set[Waiting] = set()
        for chunk in chunks(sorted(planned)):
            rows = s.exec(select(AwaitingReference).where(col(AwaitingReference.worker_id).in_(chunk))).all()
            before |= {(r.worker_id, r.target, r.reference) for r in rows}
            s.exec(delete(AwaitingReference).where(col(AwaitingReference.worker_id).in_(chunk)))
        linked = _linked(s, {(r, t) for _, t, r in missing.values()})
        waits = [w for w in missing.values() if (w[2], w[1]) not in linked]
        if waits:
            now = utcnow()
            rows_ = [{"worker_id": w, "target": t, "reference": r, "since": now} for w, t, r in waits]
            insert_rows(s, AwaitingReference, rows_)
        for worker_id, target, reference in waits:
            if (worker_id, target, reference) not in before:
                log.warning(
                    "%s names %s (manager) who has no account in %s yet: written once they have one",
                    worker_id,
                    reference,
                    target,
                    extra={"worker_id": worker_id, "target": target},
                )
        return [w for w in missing.values() if (w[2], w[1]) in linked]

    def release(self, s: Session, made: set[tuple[str, str]]) -> list[Waiting]:
        """The waits for these accounts (worker id, target), recorded in this unit of work, are over:
        deleted, and returned."""
        released: list[Waiting] = []
        if not made or _nobody_waits(s):
            return released
        for chunk in chunks(sorted({worker for worker, _ in made})):
            for row in s.exec(select(AwaitingReference).where(col(AwaitingReference.reference).in_(chunk))).all():
                if (row.reference, row.target) in made:
                    released.append((row.worker_id, row.target, row.reference))
                    s.delete(row)
        return released

    def replans(self, s: Session, released: list[Waiting]) -> list[WorkerEvent]:
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

    def waiting(self, worker_id: str | None = None) -> list[tuple[str, str, str, datetime]]:
        """(worker, target, the worker it names, since) for each wait, or this worker's."""
        with self.db.session() as s:
            query = select(AwaitingReference).order_by(col(AwaitingReference.worker_id))
            if worker_id is not None:
                query = query.where(AwaitingReference.worker_id == worker_id)
            return [(r.worker_id, r.target, r.reference, as_utc(r.since)) for r in s.exec(query).all()]


def _nobody_waits(s: Session) -> bool:
    return s.exec(select(AwaitingReference.worker_id).limit(1)).first() is None


def _linked(s: Session, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for chunk in chunks(sorted({worker for worker, _ in wanted})):
        rows = s.exec(select(LinkRow.worker_id, LinkRow.target).where(col(LinkRow.worker_id).in_(chunk))).all()
        found |= {(w, t) for w, t in rows if (w, t) in wanted}
    return found
