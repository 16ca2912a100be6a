"""Ingest of a streamed read (`contracts.protocols.RecordStream`): detect, admit and commit with
memory that grows with the changes, not with the source.

Each record's digest (the record as read) is compared with the one stored for its worker; a
Worker is built only for a record that is new or reads differently, and such Workers are diffed,
written and freed `CHUNK` at a time inside the poll's one unit of work. What is held for the whole
poll: the stored digests (popped as records arrive, so what is left at the end are the removals),
the ids read, the work emails of the Workers built, and the events the SafetyGate must judge.

The SafetyGate only ever holds back an event of a worker with an account (a link): such events and
their snapshots wait to the end of the read and are admitted together, exactly as in
`usecases/ingest.py`; the others are written at once. Cases that need the whole read to judge one
record (an id twice in one read, a work email two people in it share, pre-hires to correlate)
raise `NeedsWholeRead` before the unit commits: the caller rolls back and reads again the way that
holds everything, so their outcome is the same in both paths.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from provisioner.engine.contracts.events import WorkerEvent, change_event, removal_event
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import Quarantined, RecordStream, remote_id_of
from provisioner.engine.runtime.poller import Diff, quarantine_log
from provisioner.engine.runtime.usecases.safety_gate import POLL, SafetyGate
from provisioner.engine.store import Store
from provisioner.engine.store.db import chunks

log = logging.getLogger("provisioner.poll")

CHUNK = 2000
KEPT_EVENTS = 10_000  # events a streamed Diff lists; past that it counts them (`Diff.spilled`)
_ABSENT = "-"  # not a digest: a worker the store does not know
_SEEN = "+"  # in place of a stored digest: the worker was read (what is left unseen was removed)


class NeedsWholeRead(Exception):
    """This read needs every record at once to be judged; nothing of it was written."""


class SourceFailed(Exception):
    """The source failed while its records were being read (`cause` says how)."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class _Poll:
    """What one streamed poll carries from chunk to chunk."""

    store: Store
    s: Session
    stream: RecordStream
    stored: dict[str, str | None]
    now: datetime
    handed: dict[str, str]
    out: Diff = field(default_factory=Diff)
    # Worker ids read that the store did not know (those it knew are marked in `stored` instead, so
    # an unchanged read holds no set of its own), and how many records had an id.
    seen_new: set[str] = field(default_factory=set)
    count: int = 0
    read_ids: list[str] = field(default_factory=list)  # an incremental read's remote ids (a few)
    emails: dict[str, str] = field(default_factory=dict)  # work email (lower case) -> worker id
    known: set[str] = field(default_factory=set)  # ids in `pending` the store holds
    pending: list[tuple[Worker, str]] = field(default_factory=list)
    waiting: list[WorkerEvent] = field(default_factory=list)  # events of linked workers, for the gate
    waiting_upserts: dict[str, tuple[Worker, str | None]] = field(default_factory=dict)
    waiting_removals: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.stream.source


def take_in_stream(store: Store, gate: SafetyGate | None, stream: RecordStream, now: datetime) -> Diff:
    """Detect, admit and commit one streamed read in one unit of work."""
    with store.unit() as s:
        stored = store.snapshots.digests(stream.source, s)
        known_workers = len(stored)
        poll = _Poll(store, s, stream, stored, now, store.snapshots.handovers(s))
        for item in _guarded(stream):
            _take(poll, item)
            if len(poll.pending) >= CHUNK:
                _flush(poll)
        _flush(poll)
        _check_emails(poll)
        unseen = (w for w, digest in poll.stored.items() if digest is not _SEEN)
        gone = list(unseen) if stream.complete else [w for w in _gone_ids(stream) if w in poll.stored]
        _remove(poll, gone)
        result = poll.out
        result.seen = poll.count - len({q.remote_id for q in result.quarantined if q.remote_id})
        if gate is not None:
            admission = gate.admit(s, stream.source, poll.waiting, POLL, now, known_workers=known_workers)
            result.halted = admission.reason
            result.held = [e for e in poll.waiting if e.id in admission.held]
            poll.waiting = [e for e in poll.waiting if e.id not in admission.held]
            held_subjects = {e.subject for e in result.held}
            for subject in held_subjects:
                poll.waiting_upserts.pop(subject, None)
            poll.waiting_removals = [w for w in poll.waiting_removals if w not in held_subjects]
        _emit(poll, poll.waiting)
        upserts = list(poll.waiting_upserts.values())
        store.snapshots.write(s, stream.source, upserts, [w.id for w, _ in upserts])
        store.snapshots.remove(s, stream.source, poll.waiting_removals)
        store.sources.polled(s, stream.source, result.seen)
        # An incremental read replaces the quarantine of the records it read (a few), not the source's.
        read_ids = () if stream.complete else [*poll.read_ids, *stream.gone]
        store.quarantine.replace(s, stream.source, result.quarantined, stream.complete, read_ids)
        if not result.held:
            store.snapshots.set_cursor(s, stream.source, stream.cursor)
        store.log.append(quarantine_log(stream.source, result), s)
    return result


def _guarded(stream: RecordStream) -> Iterator[dict[str, object] | Quarantined]:
    """The stream's items; a failure of the source itself (not of the store) as SourceFailed."""
    items = iter(stream.items)
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except Exception as exc:
            raise SourceFailed(exc) from exc
        yield item


def _gone_ids(stream: RecordStream) -> Iterator[str]:
    return (WorkerId.text(stream.source, remote_id) for remote_id in dict.fromkeys(stream.gone))


def _take(poll: _Poll, item: dict[str, object] | Quarantined) -> None:
    """One record: unchanged (its digest is the stored one), quarantined, or a Worker to diff."""
    if isinstance(item, Quarantined):
        _quarantine(poll, item)
        return
    remote_id = remote_id_of(item, poll.stream.id_key)
    if remote_id is None:
        poll.out.quarantined.append(Quarantined(None, f"record without {poll.stream.id_key!r}"))
        return
    worker_id = WorkerId.text(poll.name, remote_id)
    stored = _see(poll, worker_id, remote_id)
    digest = poll.stream.digest(item)
    if stored == digest:
        return
    built = poll.stream.worker(item)
    if isinstance(built, Quarantined):
        poll.out.quarantined.append(built)
        return
    if built.work_email:
        email = built.work_email.lower()
        if poll.emails.setdefault(email, worker_id) != worker_id:
            raise NeedsWholeRead("a work email appears twice")
    if stored != _ABSENT:
        poll.known.add(worker_id)
    poll.pending.append((built, digest))


def _see(poll: _Poll, worker_id: str, remote_id: str) -> str | None:
    """Mark the worker read; returns its stored digest (`_ABSENT`: the store does not know it)."""
    stored = poll.stored.get(worker_id, _ABSENT)
    if stored is _SEEN or worker_id in poll.seen_new:
        raise NeedsWholeRead("an id appears twice")
    if stored is _ABSENT:
        poll.seen_new.add(worker_id)
    else:
        poll.stored[worker_id] = _SEEN
    poll.count += 1
    if not poll.stream.complete:
        poll.read_ids.append(remote_id)
    return stored


def _quarantine(poll: _Poll, item: Quarantined) -> None:
    if item.remote_id:
        _see(poll, WorkerId.text(poll.name, item.remote_id), item.remote_id)  # still there: not a removal
    poll.out.quarantined.append(item)


def _flush(poll: _Poll) -> None:
    """Diff the pending Workers against their stored snapshots; write what the gate cannot hold."""
    pending, poll.pending = poll.pending, []
    if not pending:
        return
    known = [w.id for w, _ in pending if w.id in poll.known]
    previous = poll.store.snapshots.of_source(poll.name, poll.s, known) if known else None
    if previous is not None:  # the stored Workers of those whose content changed, in bulk
        previous.preload([w.id for w, _ in pending if previous.hashes.get(w.id, w.content_hash()) != w.content_hash()])
    departed = poll.store.snapshots.departed(poll.name, [w.id for w, _ in pending if w.id not in poll.known], poll.s)
    events: list[WorkerEvent] = []
    same: list[tuple[str, str]] = []
    written: list[tuple[Worker, str | None]] = []
    for worker, digest in pending:
        if previous is not None and previous.hashes.get(worker.id) == worker.content_hash():
            same.append((worker.id, digest))  # read differently, the same person
            continue
        before = previous[worker.id] if previous is not None and worker.id in previous else None
        if before is not None and before[1].content_hash() == worker.content_hash():
            written.append((worker, digest))  # the stored digest is of another format: renewed
            continue
        told = before[0] if before else departed.get(worker.id)
        event = change_event(poll.name, before[1] if before else None, told, worker, poll.now)
        events.append(event)
        written.append((worker, digest))
    poll.store.snapshots.set_digests(poll.s, poll.name, same)
    events = [e for e in events if e.subject not in poll.handed]
    linked = _linked(poll, [e.subject for e in events])
    now_events = [e for e in events if e.subject not in linked]
    poll.waiting += [e for e in events if e.subject in linked]
    poll.waiting_upserts.update((w.id, (w, d)) for w, d in written if w.id in linked)
    _emit(poll, now_events)
    mine = [(w, d) for w, d in written if w.id not in linked]
    poll.store.snapshots.write(poll.s, poll.name, mine, [w.id for w, _ in mine if w.id in poll.known])
    poll.known.difference_update(w.id for w, _ in pending)


def _linked(poll: _Poll, worker_ids: list[str]) -> set[str]:
    """Which of these workers hold an account somewhere: only their events can deprovision."""
    return {worker_id for worker_id, _ in poll.store.links.for_workers(worker_ids)} if worker_ids else set()


def _emit(poll: _Poll, events: list[WorkerEvent]) -> None:
    """Into the outbox, and into the Diff (listed, or past `KEPT_EVENTS` counted)."""
    poll.store.outbox.enqueue(poll.s, events)
    out = poll.out
    room = max(0, KEPT_EVENTS - len(out.events))
    out.events += events[:room]
    out.spilled.update(e.type.value for e in events[room:])


def _remove(poll: _Poll, gone: list[str]) -> None:
    """Removal events for the workers this read no longer lists."""
    for chunk in chunks(gone, CHUNK):
        previous = poll.store.snapshots.of_source(poll.name, poll.s, chunk)
        previous.preload(chunk)
        events = [
            removal_event(poll.name, previous[w][1], previous[w][0], poll.now) for w in chunk if w not in poll.handed
        ]
        linked = _linked(poll, chunk)
        poll.waiting += [e for e in events if e.subject in linked]
        poll.waiting_removals += [w for w in chunk if w in linked]
        _emit(poll, [e for e in events if e.subject not in linked])
        poll.store.snapshots.remove(poll.s, poll.name, [w for w in chunk if w not in linked])
        poll.out.removals += chunk if len(poll.out.removals) < KEPT_EVENTS else []


def _check_emails(poll: _Poll) -> None:
    """A Worker built in this read whose work email a worker read unchanged holds: contested."""
    if not poll.emails or poll.count == len(poll.emails):
        return
    built = set(poll.emails.values())
    for worker_id, email in poll.store.snapshots.holders_of(poll.name, set(poll.emails), poll.s):
        if poll.stored.get(worker_id) is _SEEN and worker_id not in built and poll.emails[email] != worker_id:
            raise NeedsWholeRead("a work email appears twice")


def counts(diff: Diff) -> Counter[str]:
    """Events by type, those listed and those only counted."""
    return Counter(e.type.value for e in diff.events) + diff.spilled
