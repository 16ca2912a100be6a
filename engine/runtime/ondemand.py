"""Provision one person now, without Kafka (like Entra's "provision on demand").

The worker is read from its source (one record where the source can), diffed against its snapshot
and passed through the SafetyGate (usecases/provision_one.py, off the event loop), planned and
applied by the same Planner and Applier as the pipeline, and the outcome recorded the same way:
links, provisioning log, snapshot. Nothing goes through the outbox, so a running engine's next poll
finds nothing to apply; a poll that made the same change first left it in the outbox, and recording
takes it out there. Each step is handed to `show` as it happens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Action, Worker
from provisioner.engine.contracts.ports import Clock, system_clock
from provisioner.engine.contracts.protocols import FetchesOne, SourceRead
from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.runtime.usecases.provision_one import admit_one, record_one
from provisioner.engine.runtime.wiring import Parts


@dataclass
class OnDemand:
    worker: Worker | None = None
    event: WorkerEvent | None = None
    actions: list[Action] = field(default_factory=list)
    outcome: EventOutcome | None = None
    note: str | None = None  # why nothing was applied, if nothing was

    @property
    def failed(self) -> bool:
        return self.outcome is not None and self.outcome.failed


async def _read_one(parts: Parts, source: str, remote_id: str) -> SourceRead:
    if isinstance(reader := parts.sources[source], FetchesOne):
        return await reader.fetch_one(remote_id)
    read = await reader.read({})  # a source without single reads: read it all, keep this one
    wanted = WorkerId.text(source, remote_id)
    return SourceRead(workers=[w for w in read.workers if w.id == wanted], complete=False, gone=[])


async def provision_one(
    parts: Parts, worker_id: str, show: Callable[[str, Any], None], clock: Clock = system_clock
) -> OnDemand:
    """`show(step, value)`: source (the Worker or None), plan (Actions), result ((log entry, account
    id) per request), note (why nothing more happened)."""
    source, remote_id = WorkerId.parse(worker_id)
    if source not in parts.sources or not remote_id:
        raise ValueError(f"{worker_id!r} is not <source>:<id> of a configured source ({', '.join(parts.sources)})")
    done = OnDemand()
    read = await _read_one(parts, source, remote_id)
    done.worker = next((w for w in read.workers if w.id == worker_id), None)
    show("source", done.worker)
    if done.worker is None and not read.gone and not read.quarantined:
        read.gone = [remote_id]  # not listed by a full read: the source no longer has this person
    admitted = await asyncio.to_thread(admit_one, parts.store, parts.gate, worker_id, done.worker, read, clock)
    if admitted.event is None:
        done.note = admitted.note
        show("note", f"quarantined: {done.note}" if admitted.changes.quarantined else done.note)
        return done
    event, links = admitted.event, admitted.links
    done.event = event
    # One plan, shown and then run: what is due now, then what waits for its date.
    known = await asyncio.to_thread(parts.known, [event])
    approved = await asyncio.to_thread(parts.approved, [worker_id])
    planned = parts.applier.plan_event(event, known, approved.get(worker_id, ()))
    done.actions = [*planned.actions, *planned.outcome.requests, *(planned.outcome.deferred or [])]
    show("plan", done.actions)
    done.outcome = await parts.applier.apply_event(planned)
    accounts = {target: link.account_id for target, link in links.items()}
    accounts.update({link.target: link.account_id for link in done.outcome.links})
    for entry in done.outcome.log:
        show("result", (entry, accounts.get(entry.target or "")))
    await asyncio.to_thread(record_one, parts.store, worker_id, admitted.changes, done.outcome)
    return done
