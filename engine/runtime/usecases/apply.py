"""Apply, its recording half: the outcomes of applied events go into the store in one unit of work.

Links, log rows, retry state, who waits for a manager's account, deferred actions, outbox
confirmations and claims move together: an outcome is never confirmed without its failures, and a
crash leaves either all of a batch or none of it. Safe to repeat: confirming deletes an event from
the outbox, and an event already gone (recorded by another engine after a rebalance, or by an
earlier try whose answer was lost) is left as it was, so a batch never fails on a key it shares
with the store.
"""

from __future__ import annotations

from provisioner.engine.contracts.records import EventOutcome, Link, LinkKey, utcnow
from provisioner.engine.store import Store


def record(store: Store, outcomes: list[EventOutcome], *, direct: bool = False) -> set[str]:
    """Record a batch; returns the ids this call recorded (the others were repeats: their effects,
    counts and failures are another's to report). `direct`: events applied without the outbox (a
    person provisioned now), each this call's to record. Synchronous: run it off the event loop."""
    if not outcomes:
        return set()
    now = utcnow()
    ids = list(dict.fromkeys(o.event_id for o in outcomes))
    with store.unit() as s:
        # First: the events it takes out of the outbox are this unit's to record. A direct one is
        # this call's whatever the outbox holds; a poll that made the same change meanwhile put it
        # there under the same id, and it is done now too.
        confirmed = store.outbox.confirm(s, ids)
        new = set(ids) if direct else confirmed
        recorded = [o for o in outcomes if o.event_id in new]
        final = final_links(recorded)
        store.links.remove(s, [key for key, link in final.items() if link is None])
        store.links.upsert(s, [link for link in final.values() if link is not None])
        store.log.append([entry for outcome in recorded for entry in outcome.log], s)
        store.failures.record(s, recorded)
        # Grants that wait ask once; approvals whose reason ended (a move, a leaver) are void.
        store.log.append(store.approvals.settle(s, recorded, now), s)
        # After the links: an account recorded here ends the waits for it, and re-plans who waited.
        made = {(link.worker_id, link.target) for outcome in recorded for link in outcome.links}
        over = store.references.wait(s, recorded) + store.references.release(s, made)
        store.outbox.enqueue(s, store.references.replans(s, over))
        # Each applied event re-planned its worker (full state: the last plan of the batch holds).
        deferred = {o.event.subject: o.deferred for o in recorded if o.event is not None and o.deferred is not None}
        traces = {o.event.subject: o.event.traceparent for o in recorded if o.event is not None and o.deferred}
        store.schedule.replan(s, deferred, traces)
        store.claims.end(s, ids)
    return new


def final_links(outcomes: list[EventOutcome]) -> dict[LinkKey, Link | None]:
    """The last state of each (worker, target) these outcomes moved; None: the account was unlinked."""
    final: dict[LinkKey, Link | None] = {}
    for outcome in outcomes:
        for link in outcome.links:
            final[(link.worker_id, link.target)] = link
        for key in outcome.unlinked:
            final[key] = None
    return final
