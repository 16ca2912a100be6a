"""ProvisionOne's two units of work around the writes (runtime/ondemand.py reads the person and
applies): before them, what changed for this one worker and whether the SafetyGate lets it
through; after them, the worker's snapshot and the outcome recorded. Only that person's snapshot
is read, and the source's size is one count query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from provisioner.engine.contracts.events import WorkerEvent, internal_event
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.ports import Clock
from provisioner.engine.contracts.protocols import SourceRead
from provisioner.engine.contracts.records import EventOutcome, Link, by_worker
from provisioner.engine.runtime.poller import Diff, diff
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.runtime.usecases.safety_gate import ON_DEMAND, SafetyGate
from provisioner.engine.store import Store

ONDEMAND_SOURCE = "provisioner/ondemand"


@dataclass
class Admitted:
    changes: Diff
    event: WorkerEvent | None = None  # None: nothing to apply (`note` says why)
    note: str | None = None
    links: dict[str, Link] = field(default_factory=dict)


def admit_one(
    store: Store, gate: SafetyGate, worker_id: str, worker: Worker | None, read: SourceRead, clock: Clock
) -> Admitted:
    """The event to apply for this worker, as the source has them now (`worker`, from `read`)."""
    source = WorkerId.parse(worker_id).source
    with store.unit() as s:
        person = store.identities.person_of(worker_id, s)
        if person != worker_id or store.identities.person(person, s) is not None:  # docs/identity.md
            return Admitted(Diff(), note=f"{worker_id} is a record of the person {person}: a poll plans the person")
        stored = store.snapshots.stored(worker_id, s)
        departed = {} if stored else store.snapshots.departed(source, [worker_id], s)
        changes = diff(source, read, {worker_id: stored} if stored else {}, clock=clock, departed=departed)
        if changes.quarantined:
            return Admitted(changes, note="; ".join(q.reason for q in changes.quarantined))
        # Unchanged since the last poll: re-plan from what the source says now, as reconcile would.
        event = changes.events[0] if changes.events else None
        if event is None and worker is None:
            return Admitted(changes, note="the source does not have this person, and no snapshot does either")
        event = event or internal_event(ONDEMAND_SOURCE, worker_id, worker, uuid.uuid4().hex)
        known = store.snapshots.count(source, s)
        admission = gate.admit(s, source, [event], ON_DEMAND, clock(), known_workers=known)
        if admission.held:
            return Admitted(changes, note=f"held back by the safety limits: {admission.reason}")
    links = by_worker(store.links.for_workers({worker_id})).get(worker_id, {})
    return Admitted(changes, event, links=links)


def record_one(store: Store, worker_id: str, changes: Diff, outcome: EventOutcome) -> None:
    """The worker's snapshot becomes what was applied (nothing goes through the outbox, so a running
    engine's next poll finds nothing to do); then the outcome is recorded as the pipeline records
    it. A poll that made the same change before this committed put it in the outbox under the same
    id: recording takes it out, and a consumer that has not taken it yet skips it as applied."""
    source, remote_id = WorkerId.parse(worker_id)
    with store.unit() as s:
        store.snapshots.remove(s, source, changes.removals)
        store.snapshots.upsert(s, source, changes.upserts)
        store.quarantine.replace(s, source, [], complete=False, read_ids=[remote_id])
        store.sources.polled(s, source, None)
    record(store, [outcome], direct=True)
