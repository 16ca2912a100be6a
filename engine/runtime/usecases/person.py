"""One person from several records (pure, no I/O): the values a record is matched on, and the
Worker a person is planned as (docs/identity.md).

Lifecycle (status, start and termination dates) comes from the person's strongest record: the
highest-ranked source first (an ATS never outvotes the HRIS: a hired candidate stays "hired" there
long after the employee left), then, within one source, the liveliest record (a conversion's new
employee record over the ended contractor one). Every other field takes the first value found in
the field's own source order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from provisioner.engine.contracts.models import Worker, WorkerStatus

LIFECYCLE = ("status", "start_date", "termination_date")
_LIVELINESS = {WorkerStatus.active: 0, WorkerStatus.on_leave: 0, WorkerStatus.pending: 1, WorkerStatus.terminated: 2}
_OWN = frozenset({"id", "source", "remote_id", "custom", "updated_at", *LIFECYCLE})


def value_of(worker: Worker, field: str) -> Any:
    if field.startswith("custom."):
        return worker.custom.get(field.removeprefix("custom."))
    return getattr(worker, field, None)


def match_keys(worker: Worker, fields: Sequence[str]) -> list[tuple[str, str]]:
    """(field, key) per configured field the record has a value for, in order. Values are compared
    case-folded and trimmed: "Ada@Example.com " and "ada@example.com" are one address."""
    out = []
    for field in fields:
        value = value_of(worker, field)
        if value is not None and str(value).strip():
            out.append((field, f"{field}={str(value).strip().casefold()}"))
    return out


@dataclass(frozen=True)
class Ranking:
    """Source order, strongest first: per field (`fields`), else the general one (`order`); a source
    named nowhere ranks after those named, an HRIS before an ATS (`ats`)."""

    order: tuple[str, ...] = ()
    fields: Mapping[str, tuple[str, ...]] | None = None
    ats: frozenset[str] = frozenset()

    def rank(self, source: str, field: str | None = None) -> tuple[int, int]:
        order = (self.fields or {}).get(field or "", self.order)
        named = order.index(source) if source in order else len(order)
        return named, 1 if source in self.ats else 0


@dataclass(frozen=True)
class Person:
    worker: Worker  # as planned: the anchor's id, the records' merged values
    primary: str  # the record its lifecycle comes from
    bridged: str | None = None  # why it stays active though its strongest record has not started


def merge(
    person_id: str,
    records: Sequence[Worker],
    ranking: Ranking,
    today: date,
    bridge_days: int,
    was_active: bool,
) -> Person:
    """The person these records are. `was_active`: the person was active before this change; an
    ended record then stays bridged by a record pending to start within `bridge_days`."""
    ordered = _ordered(records, ranking, None)
    primary = ordered[0]
    fields: dict[str, Any] = {name: getattr(primary, name) for name in LIFECYCLE}
    for name in Worker.model_fields:
        if name in _OWN:
            continue
        order = _ordered(records, ranking, name) if ranking.fields and name in ranking.fields else ordered
        fields[name] = next((v for w in order if (v := getattr(w, name)) is not None), None)
    custom: dict[str, Any] = {}
    for w in reversed(ordered):
        custom.update(w.custom)
    bridged = None
    soon = primary.start_date is None or primary.start_date <= today + timedelta(days=bridge_days)
    if primary.status is WorkerStatus.pending and was_active and soon:
        ended = [w.id for w in ordered[1:] if w.status is not WorkerStatus.pending]
        start = primary.start_date.isoformat() if primary.start_date else "soon"
        bridged = f"{', '.join(ended) or 'a record'} ended; the same person starts as {primary.id} on {start}"
        fields["status"] = WorkerStatus.active
        fields["termination_date"] = None
        fields["start_date"] = min((w.start_date for w in records if w.start_date), default=None)
    anchor_source, _, anchor_remote = person_id.partition(":")
    worker = Worker(
        id=person_id,
        source=anchor_source,
        remote_id=anchor_remote,
        custom=custom,
        updated_at=max((w.updated_at for w in records if w.updated_at), default=None),
        **fields,
    )
    return Person(worker, primary.id, bridged)


def _ordered(records: Sequence[Worker], ranking: Ranking, field: str | None) -> list[Worker]:
    def key(w: Worker) -> tuple[Any, ...]:
        started = (w.start_date or date.min).toordinal()
        return ranking.rank(w.source, field), _LIVELINESS[w.status], -started, w.id

    return sorted(records, key=key)


def ended_note(gone: Sequence[str], person: Person, records: Sequence[Worker]) -> str | None:
    """Why the end of these records deprovisions nothing, when it does not."""
    if not gone or person.worker.status is WorkerStatus.terminated:
        return None
    if person.bridged:
        return person.bridged
    live = [w.id for w in records if w.status is not WorkerStatus.terminated and w.id not in gone]
    state = person.worker.status.value.replace("_", " ")
    return f"{', '.join(gone)} ended; the same person is {state} as {', '.join(live) or person.primary}"
