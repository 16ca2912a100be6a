"""References to people who have no account yet (a report's manager, created later in the same
sync): the person is re-planned once that account is recorded, never forgotten; each unresolved
reference is logged once and shown by `explain` and `status`."""

from __future__ import annotations

import logging

from provisioner.engine.contracts.events import REFERENCE_SOURCE, WorkerEvent, internal_event
from provisioner.engine.runtime.batch import BatchReport
from provisioner.engine.store import Store

log = logging.getLogger("provisioner.engine")


def follow_references(store: Store, report: BatchReport) -> int:
    """After a batch is recorded: remember who waits for whose account, and re-plan (through the
    outbox) those whose wait is over. Returns how many people were re-planned."""
    if not (report.planned or report.created):
        return 0
    try:
        new, released = store.references.settle(report.planned, report.unresolved, report.created)
    except Exception as exc:  # the batch itself is recorded; reconcile finds a reference left out
        log.warning("could not record who waits for a manager's account: %s", exc)
        return 0
    for worker_id, target, reference in new:
        log.warning(
            "%s names %s (manager) who has no account in %s yet: written once they have one",
            worker_id,
            reference,
            target,
            extra={"worker_id": worker_id, "target": target},
        )
    named: dict[str, list[str]] = {}
    for worker_id, target, reference in released:
        named.setdefault(worker_id, []).append(f"{reference}@{target}")
    events: list[WorkerEvent] = [
        internal_event(REFERENCE_SOURCE, worker_id, worker, ",".join(sorted(named[worker_id])))
        for worker_id in sorted(named)
        if (worker := store.snapshots.get(worker_id)) is not None
    ]
    if events:
        store.outbox.add(events)
    return len(events)
