"""Identity: one person across records and sources (docs/identity.md).

Inside a poll's unit of work, after the diff and before the safety gate (`resolve`, one call from
usecases/ingest.py): a record seen for the first time is joined to the person another record
already is, on the first configured match field that finds someone; one that finds several people
is quarantined, never guessed. Then the events of records of a person with several records become
one event of the person: its anchor's id (the first record's, under which its accounts are linked)
and the Worker its records make together (usecases/person.py). So a second record reuses the
person's accounts, and the end of one record while another is active plans no deprovisioning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import EventType, WorkerEvent, change_event, removal_event
from provisioner.engine.contracts.models import Worker, WorkerStatus
from provisioner.engine.contracts.protocols import Quarantined
from provisioner.engine.contracts.records import LogEntry
from provisioner.engine.runtime.poller import Diff, OnePerson
from provisioner.engine.runtime.usecases.person import Person, Ranking, ended_note, match_keys, merge
from provisioner.engine.store import Store
from provisioner.sources import source_kind

log = logging.getLogger("provisioner.identity")

_ENDS = (EventType.terminated, EventType.removed)


@dataclass(frozen=True)
class IdentityRules:
    match: tuple[str, ...]
    ranking: Ranking
    bridge_days: int

    @classmethod
    def of(cls, config: Config) -> IdentityRules | None:
        """The config's `identity:` block (None: records are people of their own)."""
        rules = config.identity
        if rules is None:
            return None
        ats = frozenset(s.name for s in config.sources if source_kind(s.type) == "ats")
        fields = {name: tuple(order) for name, order in rules.fields.items()}
        return cls(tuple(rules.match), Ranking(tuple(rules.precedence), fields, ats), rules.bridge_days)

    def person(self, person_id: str, records: list[Worker], now: datetime, was_active: bool) -> Person:
        return merge(person_id, records, self.ranking, now.date(), self.bridge_days, was_active)


def resolve(
    store: Store,
    s: Session,
    rules: IdentityRules | None,
    source: str,
    result: Diff,
    known: Mapping[str, object],
    now: datetime,
) -> None:
    """Join this poll's new records (`known`: the source's snapshots before it) and turn the events
    of people with several records into one event each; changes `result` in place (`persons`: each
    person as now planned, stored by the caller once the safety gate has let its event through)."""
    if rules is None:
        return
    joins, notes = _match(store, s, rules, source, result, known)
    keys = {w.id: [k for _, k in match_keys(w, rules.match)] for w in result.upserts}
    store.identities.set_keys(s, keys)
    store.identities.forget_keys(s, result.removals)
    store.identities.join_all(s, joins)
    for worker_id, (person_id, why) in joins.items():
        notes.append(LogEntry(worker_id=person_id, action="identity", result="success", reason=f"{worker_id}: {why}"))
        log.info("%s is %s (%s): it shares that person's accounts", worker_id, person_id, why)
    rows = store.identities.rows([e.subject for e in result.events], s)
    person_of = {wid: row.person_id for wid, row in rows.items()} | {w: p for w, (p, _) in joins.items()}
    by_person: dict[str, list[WorkerEvent]] = {}
    for ev in result.events:
        if ev.subject in person_of:
            by_person.setdefault(person_of[ev.subject], []).append(ev)
    if not by_person:
        _managers_as_persons(store, s, result)
        store.log.append(notes, s)
        return
    members = store.identities.members(by_person, s)
    for person_id, member_rows in members.items():
        if len(member_rows) < 2 and person_id not in {p for p, _ in joins.values()}:
            by_person.pop(person_id, None)  # kept apart by hand: a person of its own
    replaced = {ev.id for events in by_person.values() for ev in events}
    result.events = [e for e in result.events if e.id not in replaced]
    records = {
        person_id: {m.worker_id for m in members.get(person_id, [])} | {person_id} | {e.subject for e in events}
        for person_id, events in by_person.items()
    }
    # In bulk, not per person: snapshots are keyed by source first, so a read by worker id scans them.
    told = _Known(
        store.snapshots.of_workers({wid for ids in records.values() for wid in ids}, s),
        store.identities.planned(by_person, s),
        {w.id: w for w in result.upserts},
        set(result.removals),
    )
    for person_id, events in by_person.items():
        event = _person_event(rules, source, person_id, records[person_id], events, told, now, notes, result.persons)
        if event is not None:
            result.events.append(event)
        result.members[person_id] = records[person_id]
    _managers_as_persons(store, s, result)
    store.log.append(notes, s)


def _managers_as_persons(store: Store, s: Session, result: Diff) -> None:
    """A manager named by a record joined to a person is that person, whose accounts the reports'
    manager attribute is written from (the record itself has none)."""
    named = {w.manager_id for e in result.events if (w := e.data.worker) is not None and w.manager_id}
    joined = {wid: m.person_id for wid, m in store.identities.rows(named, s).items() if m.person_id != wid}
    if not joined:
        return
    result.events = [_with_manager(e, joined) for e in result.events]


def _with_manager(event: WorkerEvent, joined: dict[str, str]) -> WorkerEvent:
    worker = event.data.worker
    if worker is None or worker.manager_id not in joined:
        return event
    # Validated anew, not copied: a Worker caches its content hash.
    moved = Worker.model_validate({**worker.model_dump(), "manager_id": joined[worker.manager_id]})
    return event.model_copy(update={"data": event.data.model_copy(update={"worker": moved})})


@dataclass(frozen=True)
class _Known:
    """What the persons of one poll are told from: records before it, persons as last planned,
    and the poll's own changes."""

    stored: dict[str, Worker]
    planned: dict[str, Worker]
    upserts: dict[str, Worker]
    removals: set[str]


def one_person(store: Store, s: Session, rules: IdentityRules | None) -> OnePerson | None:
    """For the diff: records sharing a work email are no collision when they are one person, that is
    when the rules join them (a shared match value, or a join already made)."""
    if rules is None:
        return None

    def together(workers: list[Worker]) -> bool:
        ids = [w.id for w in workers]
        rows = store.identities.rows(ids, s)
        people = {rows[w].person_id if w in rows else w for w in ids}
        if len(people) == 1:
            return True
        if any(row.manual and row.person_id == wid for wid, row in rows.items()):
            return False  # kept apart by hand
        shared = set.intersection(*({k for _, k in match_keys(w, rules.match)} for w in workers))
        return bool(shared)

    return together


def _match(
    store: Store, s: Session, rules: IdentityRules, source: str, result: Diff, known: Mapping[str, object]
) -> tuple[dict[str, tuple[str, str]], list[LogEntry]]:
    """New record -> (person, why) for those that join someone; the ambiguous are quarantined."""
    new = [w for w in result.upserts if w.id not in known]
    if not new:
        return {}, []
    keyed = {w.id: match_keys(w, rules.match) for w in new}
    holders = store.identities.holders({k for pairs in keyed.values() for _, k in pairs}, s)
    rows = store.identities.rows({wid for found in holders.values() for wid in found}, s)
    joins: dict[str, tuple[str, str]] = {}
    seen_now: dict[str, set[str]] = {}  # keys of new records before this one, for two new in one read
    ambiguous: dict[str, str] = {}
    for worker in new:
        for field, key in keyed[worker.id]:
            candidates = (holders.get(key, set()) | seen_now.get(key, set())) - {worker.id}
            if not candidates:
                continue
            people = sorted({joins[c][0] if c in joins else rows[c].person_id if c in rows else c for c in candidates})
            if len(people) == 1:
                joins[worker.id] = (people[0], f"same {field} as {', '.join(sorted(candidates))}")
            else:
                ambiguous[worker.id] = (
                    f"identity: {field} matches {len(people)} people ({', '.join(people)}); "
                    f"link it by hand: provisioner identity link <person> {worker.id}"
                )
            break
        if worker.id not in ambiguous:
            for _, key in keyed[worker.id]:
                seen_now.setdefault(key, set()).add(worker.id)
    if ambiguous:
        _quarantine(result, ambiguous)
    return joins, [
        LogEntry(worker_id=wid, action="quarantine", result="skipped", reason=why, error=why)
        for wid, why in ambiguous.items()
    ]


def _quarantine(result: Diff, reasons: dict[str, str]) -> None:
    """Held back as bad input: no snapshot, no event, so the next poll finds it new again."""
    result.quarantined += [Quarantined(w.remote_id, reasons[w.id]) for w in result.upserts if w.id in reasons]
    result.upserts = [w for w in result.upserts if w.id not in reasons]
    result.events = [e for e in result.events if e.subject not in reasons]
    for wid, why in reasons.items():
        log.warning("%s quarantined: %s", wid, why)


def _person_event(
    rules: IdentityRules,
    source: str,
    person_id: str,
    ids: set[str],
    events: list[WorkerEvent],
    known: _Known,
    now: datetime,
    notes: list[LogEntry],
    planned: dict[str, Worker | None],
) -> WorkerEvent | None:
    """One event for the person, told against the person as last planned (`planned` gets it as now)."""
    before = known.planned.get(person_id) or known.stored.get(person_id)  # else the anchor alone was the person
    records = [
        known.upserts.get(wid) or known.stored[wid]
        for wid in sorted(ids)
        if (wid in known.upserts or wid in known.stored) and wid not in known.removals
    ]
    was_active = before is not None and before.status in (WorkerStatus.active, WorkerStatus.on_leave)
    told_against = _told_against(before, events)
    if not records:
        planned[person_id] = None
        return removal_event(source, before, told_against, now) if before is not None else None
    person = rules.person(person_id, records, now, was_active)
    planned[person_id] = person.worker
    gone = [e.subject for e in events if e.type in _ENDS]
    if note := ended_note(gone, person, records):
        notes.append(LogEntry(worker_id=person_id, action="identity", result="skipped", reason=note))
        log.info("%s: %s; nothing is deprovisioned", person_id, note)
    if before is not None and before.content_hash() == person.worker.content_hash():
        return None
    return change_event(source, before, told_against, person.worker, now)


def _told_against(before: Worker | None, events: list[WorkerEvent]) -> str:
    """The state a person's change is told against (its event id is made of it): the person as last
    planned and the changes of its records that make this one. Those records' event ids name the
    stored states they were told against, so a person changed back and again (A → B → A → B) has a
    new event each time, and the same change told twice has one id."""
    return "|".join([before.content_hash() if before else "-", *sorted(e.id for e in events)])
