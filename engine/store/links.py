"""Links (worker ↔ account per target) and the outcomes of applied events, which move links, log
rows, the schedule and outbox confirmations together."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.models import Action
from provisioner.engine.contracts.records import EventOutcome, Link, LinkKey, utcnow
from provisioner.engine.store.db import Database, as_utc, chunks, columns, insert_new, insert_rows
from provisioner.engine.store.failures import Failures
from provisioner.engine.store.outbox import enqueue
from provisioner.engine.store.references import References
from provisioner.engine.store.tables import Deferred, EventClaim, LinkRow, LogRow, OutboxEvent, ProcessedEvent

_LINK_COLUMNS = tuple(LinkRow.__table__.columns)  # type: ignore[attr-defined]


class Links:
    def __init__(self, db: Database, failures: Failures, references: References):
        self.db = db
        self.failures = failures  # written in the same transaction as the outcomes that move them
        self.references = references  # likewise: who waits for an account this batch made or missed

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
            for worker_id, target in [*removals, *((link.worker_id, link.target) for link in upserts)]:
                s.exec(delete(LinkRow).where(col(LinkRow.worker_id) == worker_id, col(LinkRow.target) == target))
            if upserts:
                insert_rows(s, LinkRow, [columns(LinkRow, link.model_dump()) for link in upserts])
            enqueue(s, events)

    def processed(self, event_ids: list[str]) -> set[str]:
        done: set[str] = set()
        with self.db.session() as s:
            for chunk in chunks(event_ids):
                done.update(s.exec(select(ProcessedEvent.event_id).where(col(ProcessedEvent.event_id).in_(chunk))))
        return done

    def record_outcomes(self, outcomes: list[EventOutcome]) -> set[str]:
        """Links, log rows, retry state, processed ids and outbox confirmations of a batch, in one
        transaction: an outcome is never confirmed without its failures being recorded.

        Safe to repeat: an event already recorded (by another engine after a rebalance, or by an
        earlier try whose answer was lost) is confirmed again and otherwise left as it was, so a
        batch never fails on a key it shares with the store. Returns the ids recorded by this call
        (the others were such repeats: their effects, counts and failures are another's to report)."""
        if not outcomes:
            return set()
        now = utcnow()
        ids = list(dict.fromkeys(o.event_id for o in outcomes))
        with self.db.session() as s:
            rows = [{"event_id": o.event_id, "outcome": o.status, "processed_at": now} for o in outcomes]
            new = insert_new(s, ProcessedEvent, list({r["event_id"]: r for r in rows}.values()), "event_id")
            self._record_effects(s, [o for o in outcomes if o.event_id in new])
            for chunk in chunks(ids):
                s.exec(update(OutboxEvent).where(col(OutboxEvent.event_id).in_(chunk)).values(confirmed_at=now))
                s.exec(delete(EventClaim).where(col(EventClaim.event_id).in_(chunk)))
        return new

    def _record_effects(self, s: Session, outcomes: list[EventOutcome]) -> None:
        # The last state of each (worker, target) wins; written as delete + insert, not per-row merge.
        final: dict[LinkKey, Link | None] = {}
        for outcome in outcomes:
            for link in outcome.links:
                final[(link.worker_id, link.target)] = link
            for key in outcome.unlinked:
                final[key] = None
        for target in {t for _, t in final}:
            for chunk in chunks([w for w, t in final if t == target]):
                s.exec(delete(LinkRow).where(col(LinkRow.target) == target, col(LinkRow.worker_id).in_(chunk)))
        links = [columns(LinkRow, dict(link)) for link in final.values() if link is not None]
        if links:
            insert_rows(s, LinkRow, links)
        entries = [columns(LogRow, dict(entry)) for outcome in outcomes for entry in outcome.log]
        if entries:
            insert_rows(s, LogRow, entries)
        self.failures.record(s, outcomes)
        self.references.record(s, outcomes)
        # Each applied event re-plans its worker: what was scheduled before is replaced.
        rescheduled = [o for o in outcomes if o.deferred is not None]
        for chunk in chunks(sorted({o.event.subject for o in rescheduled if o.event is not None})):
            s.exec(delete(Deferred).where(col(Deferred.worker_id).in_(chunk)))
        deferred = [_deferred_row(a) for o in rescheduled for a in o.deferred or []]
        if deferred:
            insert_rows(s, Deferred, deferred)


def _deferred_row(action: Action) -> dict[str, Any]:
    assert action.effective_at is not None
    return {
        "worker_id": action.worker_id,
        "target": action.target,
        "action": action.action.value,
        "effective_at": as_utc(action.effective_at),
        "policy": action.policy,
        "reason": action.reason,
        "created_at": utcnow(),
    }
