"""The virtual webhook: read a source, diff against the last snapshot, emit change events."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from provisioner.engine.contracts.events import WorkerEvent, change_event, removal_event
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import FetchesOne, Quarantined, Source, SourceError, SourceRead
from provisioner.engine.contracts.records import LogEntry
from provisioner.engine.kit.words import plural
from provisioner.engine.store import Store
from provisioner.engine.store.snapshots import StoredSnapshots

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

    def hold(self, ids: set[str]) -> None:
        """Keep these events out of this poll; their snapshots stay, so the next poll finds them again."""
        self.held = [e for e in self.events if e.id in ids]
        self.events = [e for e in self.events if e.id not in ids]
        subjects = {e.subject for e in self.held}
        self.upserts = [w for w in self.upserts if w.id not in subjects]
        self.removals = [w for w in self.removals if w not in subjects]


# (events, workers known before, why the source is already halted, [now, scope]) -> (ids to hold, why)
Guard = Callable[..., tuple[set[str], "str | None"]]


def judge(
    guard: Guard, events: list[WorkerEvent], known_workers: int, halted: str | None, approved: bool, **when: Any
) -> tuple[set[str], str | None, bool]:
    """The guard on one source's events, for a poll and for scheduled changes alike: the event ids
    to hold, why (a new halt when the source was not halted yet), and whether a person's approval
    (`provisioner resume`) was spent letting through what would have been held."""
    held, reason = guard(events, known_workers, halted, **when)
    if held and not halted and approved:
        return set(), None, True
    return held, reason, False


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


def _quarantine_duplicate_emails(
    read: SourceRead, snapshots: Mapping[str, tuple[str, Worker]], linked: set[str] | None
) -> None:
    """Two people with one work email would collide in every target. When one of them already held
    it (their stored snapshot has it and, when `linked` is known, they have an account), only the
    newcomers are held back; otherwise all of them are. Reasons name ids, never the address."""
    contested = set(_contested(read))
    if not contested:
        return  # nobody shares an address: the usual case, told without a list per person
    claims: dict[str, list[Worker]] = {}
    for worker in read.workers:
        if worker.id in contested and worker.work_email:
            claims.setdefault(worker.work_email.lower(), []).append(worker)
    held_back: dict[str, str] = {}
    for email, workers in claims.items():
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
    source: str, read: SourceRead, snapshots: Mapping[str, tuple[str, Worker]], linked: set[str] | None = None
) -> Diff:
    """Pure: what changed between the stored snapshot and this read. `linked`: the workers of this
    source who have an account somewhere (None: not known, a stored snapshot is enough).

    Content hashes are compared first; a stored Worker is only built for someone who changed or
    left (`StoredSnapshots` reads those in bulk), so an unchanged poll costs a hash per person."""
    _quarantine_duplicate_ids(read)
    _quarantine_duplicate_emails(read, snapshots, linked)
    now = datetime.now(UTC)
    out = Diff(quarantined=read.quarantined, seen=len(read.workers))
    stored = snapshots.hashes if isinstance(snapshots, StoredSnapshots) else {k: v[0] for k, v in snapshots.items()}
    changed = [w for w in read.workers if w.content_hash() != stored.get(w.id)]
    if read.complete:
        present = {w.id for w in read.workers}
        # A quarantined record is still there; it must not look like a removal.
        held = {f"{source}:{q.remote_id}" for q in read.quarantined if q.remote_id}
        gone = [wid for wid in stored if wid not in present and wid not in held]
    else:
        gone = [f"{source}:{remote_id}" for remote_id in read.gone if f"{source}:{remote_id}" in stored]
    if isinstance(snapshots, StoredSnapshots):
        snapshots.preload([w.id for w in changed if w.id in stored] + gone)
    for worker in changed:
        previous = snapshots[worker.id] if worker.id in stored else None
        if previous is not None and previous[1].content_hash() == worker.content_hash():
            # The same content under a digest stored in another format (an upgrade changed it):
            # the snapshot takes the new digest, and nothing happened that an event could say.
            out.upserts.append(worker)
            continue
        out.events.append(
            change_event(source, previous[1] if previous else None, previous[0] if previous else None, worker, now)
        )
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
        raise SourceError(f"source {source.name} cannot read single records")
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


async def poll(
    source: Source,
    store: Store,
    guard: Guard | None = None,
    only: list[str] | None = None,
    correlate_on: Sequence[str] | None = None,
) -> Diff:
    """One poll: events, snapshot, cursor and hand-overs are written in one transaction, or nothing is.

    With `only`, just those records are fetched, through the same diff (webhook and poll agree).
    With `correlate_on`, a new worker who is a pending pre-hire of another source takes that
    pre-hire's accounts over, and the pre-hire's own events stop."""
    cursor = store.snapshots.cursor(source.name)
    try:
        read = await read_records(source, only) if only is not None else await source.read(cursor)
    except Exception as exc:
        why = unreadable(source.name, exc)
        if only is None:  # one webhook's record failing says little about the source
            store.sources.fail(source.name, why)
        raise SourceError(f"source {source.name}: {why}; nothing was changed") from None
    # Reading the snapshot, diffing and committing run in a worker thread: for 100,000 people they
    # take seconds, during which the event loop keeps answering health checks, webhooks and writes.
    snapshots = await asyncio.to_thread(store.snapshots.of_source, source.name)
    contested = _contested(read)
    linked = {wid for wid, _ in store.links.for_workers(contested)} if contested else set()
    read_ids = [w.remote_id for w in read.workers] + list(read.gone)
    result = await asyncio.to_thread(diff, source.name, read, snapshots, linked)
    handed = store.snapshots.handovers()
    result.events = [e for e in result.events if e.subject not in handed]
    handovers = []
    new = [w for w in result.upserts if w.id not in snapshots]
    if correlate_on and new:
        handovers = correlate(new, store.snapshots.prehires_elsewhere(source.name, handed), correlate_on)
        for prehire, successor, key in handovers:
            log.info("%s is the pre-hire %s (same %s): its accounts are handed over", successor, prehire, key)
    if guard is not None and result.events:
        state = store.sources.states().get(source.name)
        halted = state.reason if state and state.halted else None
        held, reason, spent = judge(
            guard, result.events, len(snapshots), halted, source.name in store.sources.approved()
        )
        if spent:
            store.sources.consume_approval(source.name)
            log.warning("source %s: deprovisioning events go through, approved by provisioner resume", source.name)
        result.halted = reason
        result.hold(held)
        if result.halted and not halted:
            store.sources.halt(source.name, result.halted)
            log.error(
                "source %s halted: %s; nothing was deprovisioned, the rest was applied. "
                "Check the source, then run: provisioner resume %s",
                source.name,
                result.halted,
                source.name,
                extra={"source": source.name},
            )
        elif result.held:
            log.warning(
                "source %s is halted (%s): %d deprovisioning events held back",
                source.name,
                halted,
                len(result.held),
                extra={"source": source.name},
            )
    quarantine_log = [
        LogEntry(
            worker_id=WorkerId.text(source.name, q.remote_id or "?"),
            action="quarantine",
            reason=q.reason,
            result="skipped",
            error=q.reason,
        )
        for q in result.quarantined
    ]
    # With events held back, an incremental source must read the same window again next time.
    next_cursor = cursor if result.held or only is not None else read.cursor
    await asyncio.to_thread(
        store.snapshots.commit_poll,
        source.name,
        result.events,
        result.upserts,
        result.removals,
        next_cursor,
        quarantine_log,
        seen=result.seen,
        handovers=handovers,
        held=result.quarantined,
        complete=read.complete and only is None,
        read_ids=read_ids,
    )
    log.info(
        "source %s: %s read, %s, %d quarantined",
        source.name,
        plural(result.seen, "worker"),
        plural(len(result.events), "event"),
        len(result.quarantined),
        extra={"source": source.name},
    )
    return result
