"""What a person can do from the API, the console or the CLI: resume a halted source, poll now,
provision one person now, retry failures, and see one person's plan without changing anything."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import internal_event, retry_event
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Action
from provisioner.engine.contracts.records import by_worker
from provisioner.engine.runtime.poller import diff, read_records
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.store import Store

OPERATOR_SOURCE = "provisioner/operator"


class UnknownSource(LookupError):
    pass


def resume(config: Config, store: Store, source: str) -> bool:
    """Lift a safety halt (as `provisioner resume`): True if it was halted."""
    if source not in {s.name for s in config.sources}:
        raise UnknownSource(f"no source {source!r} in the config")
    return store.sources.resume(source)


def provision_now(store: Store, worker_id: str) -> str:
    """Re-plan this person from their snapshot, through the outbox like any change; the event id."""
    person = store.identities.person_of(worker_id)  # a record of a person with several: the person
    worker = store.identities.person(person) or store.snapshots.get(worker_id)
    if worker is None:
        raise LookupError(f"no worker {worker_id!r} in the store")
    event = internal_event(OPERATOR_SOURCE, person, worker, datetime.now(UTC).isoformat())
    store.outbox.add([event])
    return event.id


def retry(store: Store, worker: str | None = None, target: str | None = None, everything: bool = False) -> int:
    """Re-apply failed writes (as `provisioner retry`): each worker re-planned from its current
    snapshot and links, through the outbox; how many workers were queued again."""
    if not (worker or target or everything):
        raise ValueError("name a worker, a target, or all")
    return len(retry_events(store, worker_id=worker, target=target, everything=everything))


def retry_events(
    store: Store, *, worker_id: str | None = None, target: str | None = None, everything: bool = False
) -> list[Any]:
    """Due retries (or those a person picked) become events in the outbox: a person terminated
    meanwhile is disabled, not created, because the plan is made from what is true now."""
    now = datetime.now(UTC)
    return store.failures.take(
        lambda ids: [retry_event(wid, store.identities.person(wid) or store.snapshots.get(wid), now) for wid in ids],
        now=now,
        worker_id=worker_id,
        target=target,
        everything=everything,
    )


def unknown_worker(worker_id: str) -> str:
    """What `plan` says, on every surface, of an id neither the store nor its source knows."""
    return f"no worker {worker_id!r} in the store or its source; check the id (ids look like <source>:<remote id>)"


async def plan_worker(parts: Parts, worker_id: str) -> dict[str, Any]:
    """The actions a sync would take for this person now: their record is read from the source
    when it can be, else planned from the stored snapshot. Changes nothing."""
    stored = parts.store.snapshots.get(worker_id)
    source_name, remote_id = WorkerId.parse(worker_id)
    source, note = parts.sources.get(source_name), None
    if persons := parts.store.identities.planned([parts.store.identities.person_of(worker_id)]):
        [(worker_id, stored)] = persons.items()  # one record of a person with several (docs/identity.md)
        source, note = None, "planned as the person its joined records make together"
    events = []
    if source is not None and remote_id:
        try:
            read = await read_records(source, [remote_id])
            known = {worker_id: (stored.content_hash(), stored)} if stored else {}
            events = [e for e in diff(source_name, read, known).events if e.subject == worker_id]
        except Exception as exc:  # a source that cannot answer still leaves the snapshot to plan from
            note = f"the source could not be read ({type(exc).__name__}); planned from the stored snapshot"
    if not events:
        if stored is None:
            raise LookupError(unknown_worker(worker_id))
        events = [internal_event(OPERATOR_SOURCE, worker_id, stored, "plan")]
    links = by_worker(parts.store.links.for_workers([worker_id])).get(worker_id, {})
    approved = parts.approved([worker_id]).get(worker_id, set())
    actions: list[Action] = []
    for event in events:
        actions += parts.planner.plan(event, links, None, parts.account_of, approved)
    return {
        "worker_id": worker_id,
        "changed": [f for e in events for f in e.data.changed],
        "note": note,
        "actions": [a.model_dump(mode="json") for a in actions],
    }
