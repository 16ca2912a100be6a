"""What a person decides about identities (CLI `provisioner identity`, API `/api/v1/identities`):
link two records the rules did not join, keep one apart, and see who is joined and why.

Each is one unit of work: the rows, the accounts moved, and the person's event in the outbox (the
engine re-plans the person from it, as after any change)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from provisioner.engine.contracts.events import WorkerEvent, change_event
from provisioner.engine.contracts.models import Worker, WorkerStatus
from provisioner.engine.contracts.records import LogEntry
from provisioner.engine.runtime.usecases.identity import IdentityRules
from provisioner.engine.store import Store

BY_HAND = "linked by hand"
APART = "kept apart by hand"


@dataclass
class Decision:
    """What a link or unlink did, in sentences, and the events it queued."""

    person_id: str
    said: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def link(store: Store, rules: IdentityRules | None, person: str, record: str, now: datetime | None = None) -> Decision:
    """`record` (and any record joined to it) becomes part of the person `person` is a record of."""
    rules = _configured(rules)
    now = now or datetime.now(UTC)
    _known(store, [person, record])
    with store.unit() as s:
        into, other = store.identities.person_of(person, s), store.identities.person_of(record, s)
        out = Decision(into)
        if into == other:
            out.said.append(f"{record} is already a record of {into}")
            return out
        before = _as_planned(store, s, into)
        out.said += _move_links(store, s, other, into)
        store.identities.move(s, other, into, BY_HAND)
        store.identities.join(s, other, into, BY_HAND, manual=True)
        out.said.append(f"{record} joined {into}: its accounts are that person's from now on")
        _replan(store, s, rules, into, before, now, out)
        store.log.append([LogEntry(worker_id=into, action="identity", result="success", reason=out.said[-1])], s)
    return out


def unlink(store: Store, rules: IdentityRules | None, record: str, now: datetime | None = None) -> Decision:
    """`record` is a person of its own again (and stays so: the rules no longer join it)."""
    rules = _configured(rules)
    now = now or datetime.now(UTC)
    _known(store, [record])
    with store.unit() as s:
        person_id = store.identities.person_of(record, s)
        if person_id == record:
            others = [m for m in store.identities.members([record], s).get(record, []) if m.worker_id != record]
            if others:
                raise ValueError(
                    f"{record} is the anchor of {', '.join(m.worker_id for m in others)}: the accounts are "
                    "linked to it; unlink those records instead"
                )
            raise ValueError(f"{record} is not joined to anyone")
        out = Decision(person_id)
        before = _as_planned(store, s, person_id)
        store.identities.keep_apart(s, record, APART)
        out.said.append(f"{record} left {person_id}: it is a person of its own and gets accounts of its own")
        _replan(store, s, rules, person_id, before, now, out)
        own = store.snapshots.get(record, s)
        if own is not None:
            _queue(store, s, [change_event(own.source, None, _by_hand(None, now), own, now)], out)
        store.log.append([LogEntry(worker_id=person_id, action="identity", result="success", reason=out.said[0])], s)
    return out


def describe(store: Store, worker_id: str) -> dict[str, Any] | None:
    """The records joined to this record's person and why (None: a person of one record)."""
    person_id = store.identities.person_of(worker_id)
    members = store.identities.members([person_id]).get(person_id, [])
    if len(members) < 2:
        return None
    records = store.snapshots.of_workers([m.worker_id for m in members])
    notes = [e for e in store.log.recent(person_id, limit=200) if e.action == "identity"]
    return {
        "person": person_id,
        "records": [
            {
                "worker_id": m.worker_id,
                "why": m.why,
                "manual": m.manual,
                "status": records[m.worker_id].status.value if m.worker_id in records else "gone",
            }
            for m in members
        ],
        "notes": [{"time": e.time, "note": e.reason} for e in notes][-5:],
    }


def _configured(rules: IdentityRules | None) -> IdentityRules:
    if rules is None:
        raise ValueError("the config has no identity: block; add one to join records (docs/identity.md)")
    return rules


def _known(store: Store, worker_ids: list[str]) -> None:
    found = store.snapshots.of_workers(worker_ids)
    if missing := [w for w in worker_ids if w not in found]:
        named = ", ".join(map(repr, missing))
        raise LookupError(f"no worker {named} in the store (ids look like <source>:<remote id>)")


def _as_planned(store: Store, s: Session, person_id: str) -> Worker | None:
    return store.identities.person(person_id, s) or store.snapshots.get(person_id, s)


def _move_links(store: Store, s: Session, old: str, new: str) -> list[str]:
    """The joined person's accounts move where the person has none; where it has one, both stay."""
    kept = store.identities.move_links(s, old, new)
    return [f"{old} has its own account in {t} too; it stays linked to {old}: disable it by hand" for t in kept]


def _replan(
    store: Store, s: Session, rules: IdentityRules, person_id: str, before: Worker | None, now: datetime, out: Decision
) -> None:
    ids = [m.worker_id for m in store.identities.members([person_id], s).get(person_id, [])] or [person_id]
    records = list(store.snapshots.of_workers(ids, s).values())
    if not records or [r.id for r in records] == [person_id]:
        store.identities.set_person(s, person_id, None)  # a person of one record again: the record is the person
        if not records:
            return
        worker = records[0]
    else:
        was_active = before is not None and before.status in (WorkerStatus.active, WorkerStatus.on_leave)
        worker = rules.person(person_id, records, now, was_active).worker
        store.identities.set_person(s, person_id, worker)
    if before is None or before.content_hash() != worker.content_hash():
        _queue(store, s, [change_event(worker.source, before, _by_hand(before, now), worker, now)], out)


def _by_hand(before: Worker | None, now: datetime) -> str:
    """What a change decided by a person is told against (its event id is made of it): the person
    as it was and the moment of the decision. Each decision is one unit of work, made once, so link,
    unlink, link again are three events, none taken for another in flight or applied before (told
    against the content alone, the second link had the first one's id and was dropped)."""
    return f"{before.content_hash() if before else '-'}|by hand@{now.isoformat()}"


def _queue(store: Store, s: Session, events: list[WorkerEvent], out: Decision) -> None:
    store.outbox.enqueue(s, events)
    out.events += [e.id for e in events]
