"""Ingest: read a source (async, its HTTP) → detect (`poller.diff`, which writes nothing) → admit
(the SafetyGate) → commit. Everything after the read is one synchronous function over one unit of
work, run off the event loop by one `asyncio.to_thread`: for 100,000 people it takes seconds, during
which the loop keeps answering health checks, webhooks and writes; and a poll commits all of it, or
nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.ports import Clock, system_clock
from provisioner.engine.contracts.protocols import Source, SourceError, SourceRead, Streams
from provisioner.engine.kit import tracing
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.poller import Diff, correlate, diff, quarantine_log, read_records, unreadable
from provisioner.engine.runtime.usecases.identity import IdentityRules, one_person, resolve
from provisioner.engine.runtime.usecases.ingest_stream import NeedsWholeRead, SourceFailed, take_in_stream
from provisioner.engine.runtime.usecases.safety_gate import POLL, SafetyGate
from provisioner.engine.store import Store

log = logging.getLogger("provisioner.poll")

# Detect, admit and commit: the span the changes' events are made in, and so their parent.
OUTBOX_SPAN = "outbox write"


@dataclass(frozen=True)
class Reading:
    """One read of a source and how it was asked for."""

    source: str
    read: SourceRead
    only: bool = False  # just the records a webhook named: the cursor stays where it is
    correlate_on: Sequence[str] = field(default_factory=tuple)
    identity: IdentityRules | None = None  # join records of one person (usecases/identity.py)


async def ingest(
    source: Source,
    store: Store,
    gate: SafetyGate | None = None,
    only: list[str] | None = None,
    correlate_on: Sequence[str] | None = None,
    clock: Clock = system_clock,
    identity: IdentityRules | None = None,
) -> Diff:
    """One poll: events, snapshot, cursor and hand-overs are written in one transaction, or nothing is.

    With `only`, just those records are fetched, through the same diff (webhook and poll agree).
    With `correlate_on`, a new worker who is a pending pre-hire of another source takes that
    pre-hire's accounts over, and the pre-hire's own events stop."""
    # Read before the source is asked: a store that cannot give it is the store's error, not the source's.
    cursor = await asyncio.to_thread(store.snapshots.cursor, source.name) if only is None else {}
    # Joining records of one person (identity) and hand-overs (correlate_on) compare the whole read.
    if only is None and not correlate_on and identity is None and isinstance(source, Streams) and source.streams:
        try:
            result = await _streamed(source.name, source, store, gate, cursor, clock)
        except NeedsWholeRead as why:
            log.info("source %s: %s; read again as a whole", source.name, why, extra={"source": source.name})
        else:
            _told(source.name, result)
            return result
    try:
        read = await read_records(source, only) if only is not None else await source.read(cursor)
    except Exception as exc:
        raise await _unreadable(source.name, store, exc, only is None) from None
    reading = Reading(source.name, read, only is not None, tuple(correlate_on or ()), identity)
    with tracing.child(OUTBOX_SPAN):
        return await asyncio.to_thread(take_in, store, gate, reading, clock)


async def _streamed(
    name: str, source: Streams, store: Store, gate: SafetyGate | None, cursor: dict[str, Any], clock: Clock
) -> Diff:
    """A read whose records flow through the diff one chunk at a time (`ingest_stream`)."""
    try:
        stream = await source.stream(cursor)
    except Exception as exc:
        raise await _unreadable(name, store, exc, True) from None
    try:
        with tracing.child(OUTBOX_SPAN):
            return await asyncio.to_thread(take_in_stream, store, gate, stream, clock())
    except SourceFailed as failed:
        raise await _unreadable(name, store, failed.cause, True) from None


async def _unreadable(name: str, store: Store, exc: BaseException, whole: bool) -> SourceError:
    why = unreadable(name, exc)
    if whole:  # one webhook's record failing says little about the source
        await asyncio.to_thread(store.sources.fail, name, why)
    return SourceError(f"source {name}: {why}; nothing was changed")


def take_in(store: Store, gate: SafetyGate | None, reading: Reading, clock: Clock) -> Diff:
    """Detect, admit and commit one read in one unit of work."""
    name, read = reading.source, reading.read
    now = clock()
    # Before the diff, which moves the read's bad records to its quarantine.
    read_ids = [w.remote_id for w in read.workers] + list(read.gone)
    with store.unit() as s:
        # A webhook names a few people: their snapshots are read, and the source's size is counted.
        named = [WorkerId.text(name, remote_id) for remote_id in read_ids] if reading.only else None
        snapshots = store.snapshots.of_source(name, s, named)
        known = len(snapshots) if named is None else store.snapshots.count(name, s)
        unknown = [w.id for w in read.workers if w.id not in snapshots]
        result = diff(
            name,
            read,
            snapshots,
            lambda ids: {wid for wid, _ in store.links.for_workers(ids)},
            clock,
            one_person(store, s, reading.identity),  # records the identity rules join share an email
            store.snapshots.departed(name, unknown, s),
        )
        handed = store.snapshots.handovers(s)
        result.events = [e for e in result.events if e.subject not in handed]
        handovers = []
        new = [w for w in result.upserts if w.id not in snapshots]
        if reading.correlate_on and new:
            handovers = correlate(new, store.snapshots.prehires_elsewhere(name, handed, s), reading.correlate_on)
            for prehire, successor, key in handovers:
                log.info("%s is the pre-hire %s (same %s): its accounts are handed over", successor, prehire, key)
        resolve(store, s, reading.identity, name, result, snapshots, now)
        if gate is not None:
            admission = gate.admit(s, name, result.events, POLL, now, known_workers=known)
            result.halted = admission.reason
            result.hold(admission.held)
        store.snapshots.hand_over(s, handovers)
        store.outbox.enqueue(s, result.events)
        store.sources.polled(s, name, None if reading.only else result.seen)  # a webhook read a few, not the source
        complete = read.complete and not reading.only
        store.quarantine.replace(s, name, result.quarantined, complete, read_ids)
        store.snapshots.remove(s, name, result.removals)
        store.snapshots.upsert(s, name, result.upserts)
        store.identities.set_persons(s, result.persons)
        # With events held back, an incremental source must read the same window again next time.
        if not (result.held or reading.only):
            store.snapshots.set_cursor(s, name, read.cursor)
        store.log.append(quarantine_log(name, result), s)
    _told(name, result)
    return result


def _told(name: str, result: Diff) -> None:
    log.info(
        "source %s: %s read, %s, %d quarantined",
        name,
        plural(result.seen, "worker"),
        plural(result.event_count, "event"),
        len(result.quarantined),
        extra={"source": name},
    )
