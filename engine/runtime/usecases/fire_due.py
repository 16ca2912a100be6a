"""FireDue: deferred actions falling due become events, re-planned from the current snapshot, in
one unit of work. Per source they pass the same SafetyGate as a poll: fifty end-of-day
terminations from a bad import halt the source instead of disabling fifty people at midnight."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from provisioner.engine.contracts.events import WorkerEvent, scheduled_event
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.ports import Clock
from provisioner.engine.kit import tracing
from provisioner.engine.runtime.usecases.safety_gate import DUE, SafetyGate
from provisioner.engine.store import Store
from provisioner.engine.store.approvals import entry

log = logging.getLogger("provisioner.engine")


def fire_due(store: Store, gate: SafetyGate, clock: Clock) -> list[WorkerEvent]:
    """The events that went into the outbox. The rows of workers held back stay, to fall due again
    after a resume; a change that arrived in between wins, since each event is made from the
    snapshot as it is now."""
    now = clock()
    with store.unit() as s:
        expire_approvals(store, s, now)
        rows = store.schedule.claim_due(s, now)
        if not rows:
            return []
        due: dict[str, datetime] = {}
        origins: dict[str, list[str | None]] = {}
        for row in rows:
            due[row.worker_id] = max(due.get(row.worker_id, row.effective_at), row.effective_at)
            origins.setdefault(row.worker_id, []).append(row.traceparent)
        workers = store.snapshots.of_workers(due, s) | store.identities.planned(due, s)  # a person of several records
        # Each firing is a new trace, linked to the change that deferred it.
        events = [
            scheduled_event(wid, workers.get(wid), when).model_copy(
                update={"traceparent": tracing.new_trace("deferred", {"provisioner.worker_id": wid}, origins[wid])}
            )
            for wid, when in sorted(due.items())
        ]
        by_source: dict[str, list[WorkerEvent]] = {}
        for event in events:
            by_source.setdefault(WorkerId.parse(event.subject).source, []).append(event)
        held: set[str] = set()
        for source, mine in by_source.items():
            # Of the workers the store knows, as a poll and provision-now judge theirs.
            held |= gate.admit(s, source, mine, DUE, now, known_workers=store.snapshots.count(source, s)).held
        waiting = {e.subject for e in events if e.id in held}
        store.schedule.put_back(s, [r for r in rows if r.worker_id in waiting])
        events = [e for e in events if e.id not in held]
        store.outbox.enqueue(s, events)
    return events


def expire_approvals(store: Store, s: Session, now: datetime) -> None:
    """Requests nobody decided in time are denied as expired, logged and reported (the grant keeps
    waiting no more: the person is not re-planned, nothing is written)."""
    expired = store.approvals.expire_due(s, now)
    for request in expired:
        log.warning(
            "approval request %s expired unanswered: %s in %s stays ungranted",
            request.id,
            request.worker_id,
            request.target,
            extra={"worker_id": request.worker_id, "target": request.target},
        )
    reason = "expired: nobody decided in time, so the grant is denied"
    store.log.append([entry(r, "approval_expired", "failure", reason) for r in expired], s)
