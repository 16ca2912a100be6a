"""The virtual webhook's detection: what changed between a source's read and its last snapshot
(`diff`: it writes nothing, and reads only the stored workers it needs, through `StoredSnapshots`,
and who has an account when a work email is contested, through `linked`), the bad records a read
quarantines, and pre-hires found again in another source.
The Ingest use case (usecases/ingest.py) reads, runs this, admits and commits."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from provisioner.engine.contracts.events import WorkerEvent, change_event, removal_event
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.ports import Clock, system_clock
from provisioner.engine.contracts.protocols import FetchesOne, Quarantined, Source, SourceError, SourceRead
from provisioner.engine.contracts.records import LogEntry
from provisioner.engine.store.snapshots import StoredSnapshots, stored_hash

log = logging.getLogger("provisioner.poll")


@dataclass
class Diff:
    events: list[WorkerEvent] = field(default_factory=list)
    upserts: list[Worker] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    seen: int = 0
    held: list[WorkerEvent] = field(default_factory=list)  # deprovisions held back by the safety guard
    halted: str | None = None  # why the source is halted, if it is
    # People of several records (usecases/identity.py): their records in this poll, and each person as
    # now planned; an event of a person held back holds back its records and its new state too.
    members: dict[str, set[str]] = field(default_factory=dict)
    persons: dict[str, Worker | None] = field(default_factory=dict)
    # Events by type past those `events` lists: a streamed poll of a million people counts them.
    spilled: Counter[str] = field(default_factory=Counter)

    @property
    def event_count(self) -> int:
        return len(self.events) + self.spilled.total()

    def event_types(self) -> Iterator[str]:
        yield from (e.type.value for e in self.events)
        yield from self.spilled.elements()

    def hold(self, ids: set[str]) -> None:
        """Keep these events out of this poll; their snapshots stay, so the next poll finds them again."""
        self.held = [e for e in self.events if e.id in ids]
        self.events = [e for e in self.events if e.id not in ids]
        subjects = {e.subject for e in self.held}
        for person in list(subjects):
            subjects |= self.members.get(person, set())
            self.persons.pop(person, None)
        self.upserts = [w for w in self.upserts if w.id not in subjects]
        self.removals = [w for w in self.removals if w not in subjects]


# Which of these workers (ids) have an account somewhere: asked only when a work email is contested.
Linked = Callable[[list[str]], Collection[str]]


def _quarantine_duplicate_ids(read: SourceRead) -> None:
    """Two records with one id in one read cannot both be that person: hold every one of them back
    (the stored snapshot stays, so nobody is deprovisioned) until the source is corrected."""
    counts = Counter([w.remote_id for w in read.workers] + [q.remote_id for q in read.quarantined if q.remote_id])
    dupes = {remote_id for remote_id, n in counts.items() if n > 1}
    if not dupes:
        return
    read.quarantined = [
        Quarantined(q.remote_id, f"id appears {counts[q.remote_id]} times in one read; {q.reason}", q.line)
        if q.remote_id in dupes
        else q
        for q in read.quarantined
    ]
    read.quarantined += [
        Quarantined(w.remote_id, f"id appears {counts[w.remote_id]} times in one read")
        for w in read.workers
        if w.remote_id in dupes
    ]
    read.workers = [w for w in read.workers if w.remote_id not in dupes]


# Whether these records, sharing a work email, are one person (identity rules join them): no collision.
OnePerson = Callable[[list[Worker]], bool]


def _quarantine_duplicate_emails(
    read: SourceRead,
    snapshots: Mapping[str, tuple[str, Worker]],
    linked_of: Linked | None,
    one_person: OnePerson | None = None,
) -> None:
    """Two people with one work email would collide in every target. When one of them already held
    it (their stored snapshot has it and, when `linked_of` is given, they have an account), only the
    newcomers are held back; otherwise all of them are. Reasons name ids, never the address."""
    contested = set(_contested(read))
    if not contested:
        return  # nobody shares an address: the usual case, told without a list per person
    linked = set(linked_of(sorted(contested))) if linked_of is not None else None
    if isinstance(snapshots, StoredSnapshots):
        snapshots.preload(contested)  # in bulk: `_held` reads each of them
    claims: dict[str, list[Worker]] = {}
    for worker in read.workers:
        if worker.id in contested and worker.work_email:
            claims.setdefault(worker.work_email.lower(), []).append(worker)
    held_back: dict[str, str] = {}
    for email, workers in claims.items():
        if one_person is not None and one_person(workers):
            continue
        holders = [w for w in workers if _held(w.id, email, snapshots, linked)]
        if len(holders) == 1:
            for w in workers:
                if w is not holders[0]:
                    held_back[w.id] = f"work_email is already held by {holders[0].id}"
            continue
        for w in workers:
            held_back[w.id] = f"work_email is shared by {', '.join(o.id for o in workers if o is not w)}"
    if not held_back:
        return
    read.quarantined += [Quarantined(w.remote_id, held_back[w.id]) for w in read.workers if w.id in held_back]
    read.workers = [w for w in read.workers if w.id not in held_back]


def _held(worker_id: str, email: str, snapshots: Mapping[str, tuple[str, Worker]], linked: set[str] | None) -> bool:
    previous = snapshots.get(worker_id)
    had = previous is not None and (previous[1].work_email or "").lower() == email
    return had and (linked is None or worker_id in linked)


def diff(
    source: str,
    read: SourceRead,
    snapshots: Mapping[str, tuple[str, Worker]],
    linked: Linked | None = None,
    clock: Clock = system_clock,
    one_person: OnePerson | None = None,
    departed: Mapping[str, str] | None = None,
) -> Diff:
    """What changed between the stored snapshot and this read. `linked`: which of the workers whose
    work email is contested have an account somewhere (None: not known, a stored snapshot is enough).
    `departed`: what the hire of a worker the snapshots lack is told against (`Snapshots.departed`).

    Content hashes are compared first; a stored Worker is only built for someone who changed or
    left (`StoredSnapshots` reads those in bulk), so an unchanged poll costs a hash per person."""
    _quarantine_duplicate_ids(read)
    _quarantine_duplicate_emails(read, snapshots, linked, one_person)
    now = clock()
    out = Diff(quarantined=read.quarantined, seen=len(read.workers))
    stored = (
        snapshots.hashes
        if isinstance(snapshots, StoredSnapshots)
        else {k: stored_hash(v[0]) for k, v in snapshots.items()}
    )
    changed = [w for w in read.workers if w.content_hash() != stored.get(w.id)]
    if read.complete:
        present = {w.id for w in read.workers}
        # A quarantined record is still there; it must not look like a removal.
        held = {WorkerId.text(source, q.remote_id) for q in read.quarantined if q.remote_id}
        gone = [wid for wid in stored if wid not in present and wid not in held]
    else:
        gone = [wid for wid in (WorkerId.text(source, remote_id) for remote_id in read.gone) if wid in stored]
    if isinstance(snapshots, StoredSnapshots):
        snapshots.preload([w.id for w in changed if w.id in stored] + gone)
    for worker in changed:
        previous = snapshots[worker.id] if worker.id in stored else None
        if previous is not None and previous[1].content_hash() == worker.content_hash():
            # The same content under a digest stored in another format (an upgrade changed it):
            # the snapshot takes the new digest, and nothing happened that an event could say.
            out.upserts.append(worker)
            continue
        told = previous[0] if previous else (departed or {}).get(worker.id)
        out.events.append(change_event(source, previous[1] if previous else None, told, worker, now))
        out.upserts.append(worker)
    for wid in gone:
        digest, last = snapshots[wid]
        out.events.append(removal_event(source, last, digest, now))
        out.removals.append(wid)
    return out


def unreadable(source: str, exc: BaseException) -> str:
    """Why a source could not be read, in one line: a connector's own message (which names no
    data values), else only the kind of error, since an unexpected error's text may quote data."""
    if isinstance(exc, SourceError):
        return str(exc).removeprefix(f"source {source}: ")
    log.debug("source %s could not be read", source, exc_info=exc)
    return f"could not be read ({type(exc).__name__}; run with --verbose for details)"


def _contested(read: SourceRead) -> list[str]:
    """Ids of the workers in this read whose work email someone else in it has too."""
    counts = Counter(w.work_email.lower() for w in read.workers if w.work_email)
    return [w.id for w in read.workers if w.work_email and counts[w.work_email.lower()] > 1]


async def read_records(source: Source, remote_ids: list[str]) -> SourceRead:
    """Only these records (a webhook named them): an incomplete read that leaves the cursor alone."""
    if not isinstance(source, FetchesOne):
        raise SourceError(f"source {source.name}: it cannot read single records")
    read = SourceRead(complete=False)
    for remote_id in dict.fromkeys(remote_ids):
        one = await source.fetch_one(remote_id)
        read.workers += one.workers
        read.quarantined += one.quarantined
        read.gone += one.gone
    return read


def correlate(new: list[Worker], prehires: list[Worker], keys: Sequence[str]) -> list[tuple[str, str, str]]:
    """(pre-hire id, new worker id, key) for each new worker that is a pre-hire from another source,
    by the first key (in the configured order) both have a value for. An ambiguous value matches
    nobody: linking the wrong person's accounts is worse than creating new ones."""
    matches, claimed = [], set()
    for worker in new:
        for key in keys:
            value = getattr(worker, key, None)
            if not value:
                continue
            found = [p for p in prehires if str(getattr(p, key, None) or "").lower() == str(value).lower()]
            if len(found) == 1 and found[0].id not in claimed:
                matches.append((found[0].id, worker.id, key))
                claimed.add(found[0].id)
            elif len(found) > 1:
                log.warning("%s: %s %s matches %d pre-hires; not correlated", worker.id, key, value, len(found))
            if found:
                break
    return matches


def quarantine_log(source: str, result: Diff) -> list[LogEntry]:
    """One log row per record a poll quarantined."""
    return [
        LogEntry(
            worker_id=WorkerId.text(source, q.remote_id or "?"),
            action="quarantine",
            reason=q.reason,
            result="skipped",
            error=q.reason,
        )
        for q in result.quarantined
    ]
