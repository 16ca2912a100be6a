"""Stream events into the writers without batch barriers.

Different workers run concurrently (bounded); one worker's events run strictly in order, each after
the previous one finished. Outcomes are written to the store in groups by a background flusher, so a
slow request holds up its own worker and nobody else — never a whole Kafka batch. An event whose
plan has nothing due now (most updates, anyone no policy grants anything) completes as it is
accepted, without a task of its own.

Store calls run in a worker thread (`asyncio.to_thread`): on PostgreSQL each is a round trip, and
in the event loop it would stall every request in flight meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.kit import tracing
from provisioner.engine.runtime.apply import Applier, BatchReport, Planned
from provisioner.engine.runtime.flushing import gathered
from provisioner.engine.runtime.handover import Handover
from provisioner.engine.runtime.health import RecordingHealth, internal_error
from provisioner.engine.runtime.held import Claiming, Held, read_retrying
from provisioner.engine.runtime.overlay import LinkOverlay
from provisioner.engine.runtime.plans import Plans, Read
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store

log = logging.getLogger("provisioner.pipeline")


class Pipeline:
    def __init__(
        self,
        applier: Applier,
        store: Store,
        *,
        concurrency: int = 8,
        max_pending: int = 1000,
        flush_size: int = 500,
        flush_interval: float = 0.1,
        on_flush: Callable[[BatchReport], Awaitable[None]] | None = None,
        on_recorded: Callable[[list[str]], Awaitable[None]] | None = None,
        claim: Claiming | None = None,
        recheck_interval: float = 1.0,
        before_record: Callable[[list[EventOutcome]], Awaitable[None]] | None = None,
        approved: Callable[[list[str]], dict[str, set[str]]] | None = None,
    ):
        self.applier = applier
        self.store = store
        self.max_pending = max_pending
        self.flush_size = flush_size
        self.flush_interval = flush_interval
        self.on_flush = on_flush
        self.on_recorded = on_recorded  # event ids now in the store: their Kafka offsets may be committed
        # Adds to outcomes before they are recorded (usecases/writeback.py): as each event ends, and
        # over the batch as it is recorded, for the outcomes not looked at yet (no task of their own).
        self.before_record = before_record
        self._slots = asyncio.Semaphore(concurrency)
        self._tails: dict[str, asyncio.Task[None]] = {}  # last queued event per worker
        self._per_worker: dict[str, int] = {}  # events queued or running per worker
        self._known: set[str] = set()  # event ids accepted and not yet recorded
        self._overlay = LinkOverlay()
        self.plans = Plans(applier, store, self._overlay, approved)
        self._done: list[EventOutcome] = []
        self._pending = 0
        self._changed = asyncio.Condition()
        self._flusher: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # held while a batch is recorded: a thread cannot be cancelled
        # Claims (store) before writes, so two engines never apply one event: `claim` takes a batch's
        # ids and returns those this engine holds; the others wait (runtime/held.py). An event whose
        # plan writes nothing is not claimed (`_claim_and_accept`).
        self.held = (
            Held(claim, store.outbox.applied, self._accept_in_order, self._finished_elsewhere, recheck_interval)
            if claim is not None
            else None
        )
        self._accepting = asyncio.Lock()  # one worker's events are queued in arrival order
        self.handover = Handover()  # events of partitions this engine lost
        self.health = RecordingHealth()  # what /readyz, the heartbeat and the metrics read

    async def submit(self, events: list[WorkerEvent]) -> BatchReport:
        """Queue events; returns once they are accepted (waits while too many are in flight)."""
        report = BatchReport()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name="outcome-flusher")
        async with self._changed:
            await self._changed.wait_for(lambda: self._pending < self.max_pending)
        if again := self.handover.revoked_among({ev.id for ev in events if ev.id in self._known}):
            # Fetched again while a revocation drops them (their partition came back): skipped as in
            # flight, then dropped, they would be applied by nobody. Taken anew, in order, once gone.
            await self.settle(again, None)
            self.handover.keep_claims(again)
        # An id in flight is skipped before the store is asked: while it answers, a flush may record
        # that event and forget it, and it must not then look new.
        candidates = [ev for ev in events if ev.id not in self._known]
        done = await read_retrying(self.store.outbox.applied, [e.id for e in candidates])
        report.skipped += len(events) - len(candidates)
        fresh: list[WorkerEvent] = []
        for ev in candidates:
            if ev.id in done or ev.id in self._known:
                report.skipped += 1  # already applied or on its way: exactly-once effect
            else:
                self._known.add(ev.id)
                fresh.append(ev)
        if fresh:
            await (self._accept_in_order(fresh) if self.held is None else self._claim_and_accept(fresh, self.held))
        return report

    async def _accept_in_order(self, events: list[WorkerEvent]) -> None:
        async with self._accepting:
            self._count(events)
            read = await self.plans.read(events)
            await self.applier.prime(events, read.links)
            await self._accept(events, read, {})

    async def _claim_and_accept(self, fresh: list[WorkerEvent], held: Held) -> None:
        """A claim guards writes to the apps; an event whose plan writes nothing needs none (an
        engine recording it again writes nothing either: the first recording is kept). The first
        event of each worker with nothing before it here is planned before any claim; the events
        that write, and those behind another of their worker, are claimed in batch order."""
        elsewhere = await held.elsewhere(fresh)  # read before the lock: nothing may come between it and the count
        async with self._accepting:
            free = held.first_free(fresh, self._per_worker, elsewhere)
            self._count(fresh)
            read = await self.plans.read(fresh)
            early = {ev.id: self.plans.plan(ev, read) for ev in free}
            await self._accept([ev for ev in free if not early[ev.id].actions], read, early)
        rest = [ev for ev in fresh if ev.id not in early or early[ev.id].actions]
        ready = await held.sort(rest)
        async with self._accepting:
            taken = {ev.id for ev in ready}
            for ev in rest:
                if ev.id not in taken:  # held: counted again when it is released
                    self._leave(ev)
            await self.applier.prime(ready, read.links)
            await self._accept(ready, read, early)

    async def _finished_elsewhere(self, event_ids: list[str]) -> None:
        """Held events another engine recorded: done here too (their offsets may be committed)."""
        for event_id in event_ids:
            self._known.discard(event_id)
        self.health.progress()
        if self.on_recorded:
            await self.on_recorded(event_ids)

    def _count(self, events: list[WorkerEvent]) -> None:
        for ev in events:  # counted before the links are read, so the overlay outlives the read
            self._per_worker[ev.subject] = self._per_worker.get(ev.subject, 0) + 1

    async def _accept(self, fresh: list[WorkerEvent], read: Read, early: dict[str, Planned]) -> None:
        """Queue counted events, planned from `read` (one read for the batch: its workers' links
        and those of the managers their plans name) or, the first of a worker, `early`."""
        if not fresh:
            return
        self._pending += len(fresh)
        wake = False
        for ev in fresh:
            previous = self._tails.get(ev.subject)
            planned = None
            if previous is None:  # nothing of this worker's in flight: planned now, nothing due means done
                planned = early.get(ev.id) or self.plans.plan(ev, read)
                if not planned.actions:
                    wake |= self._complete(ev, planned.outcome)
                    continue
            # Behind another event of this worker: planned once that one finished, from what it left.
            task = self._tails[ev.subject] = asyncio.create_task(self._run(ev, previous, planned, read))
            self.handover.queued(ev.id, task)
        if wake:  # once, after the loop: no pause between accepting these events
            await self._wake_flusher()

    async def _run(
        self, ev: WorkerEvent, previous: asyncio.Task[None] | None, planned: Planned | None, read: Read
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # its failure is its own; ours must only come after it
            async with self._slots:
                if not self.handover.start(ev.id):  # its partition moved to another engine meanwhile
                    self._drop(ev)
                    return
                planned = planned if planned is not None else self.plans.plan(ev, read)
                with tracing.handling("apply", ev) as span:
                    outcome = await self.applier.apply_event(planned)
                    await self._before_record(outcome)
                    tracing.failed_at(span, [f.target for f in outcome.failures])
        except asyncio.CancelledError:
            if not self.handover.dropping(ev.id):
                raise
            self._drop(ev)  # revoked while it waited its turn
            return
        except Exception as exc:  # a bug, not a target error: record it as a failure, never lose it
            outcome = internal_error(ev, exc)
        finally:
            self.handover.finished(ev.id)
        if self._complete(ev, outcome):
            await self._wake_flusher()

    async def _before_record(self, outcome: EventOutcome) -> None:
        """What adds to an outcome (a writeback) runs as its event ends, alongside other events; one
        that fails here is looked at again when the batch is recorded."""
        if self.before_record is None:
            return
        try:
            await self.before_record([outcome])
        except Exception as exc:  # the store or a bug: the batch's own call tries again
            log.warning("event %s: %s (tried again as it is recorded)", outcome.event_id, exc)

    def _complete(self, ev: WorkerEvent, outcome: EventOutcome) -> bool:
        """Hand an outcome to the flusher; returns whether the flusher should be woken for it."""
        self._overlay.moved(outcome)
        self._done.append(outcome)
        self._leave(ev)
        # The flusher waits for a first outcome (to start its interval), a full group, or the last
        # outcome pending: waking it for every event in between cost more than applying one.
        done = len(self._done)
        return done == 1 or done >= self.flush_size or done >= self._pending

    def _leave(self, ev: WorkerEvent) -> None:
        self._per_worker[ev.subject] -= 1
        if self._per_worker[ev.subject] == 0:  # none of this worker's events queued behind: we are its tail
            del self._per_worker[ev.subject]
            self._tails.pop(ev.subject, None)  # (an event completed without a task has none)

    def _drop(self, ev: WorkerEvent) -> None:
        """Forget an event this engine will not apply: its partition's new owner will."""
        self._leave(ev)
        self._pending -= 1
        self._forget([ev.id])

    def _forget(self, event_ids: list[str]) -> None:
        for event_id in event_ids:
            self._known.discard(event_id)
        self.handover.dropped(event_ids)
        self.health.progress()
        asyncio.get_running_loop().create_task(self._wake_flusher())  # for drain() and settle()

    async def _wake_flusher(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _flush_loop(self) -> None:
        while True:
            await gathered(
                self._changed, lambda: len(self._done), lambda: self._pending, self.flush_size, self.flush_interval
            )
            try:
                await self._flush()
            except Exception as exc:  # a busy or unreachable store: the outcomes wait in memory
                self.health.failed(exc, len(self._done))
                await asyncio.sleep(1.0)

    async def _flush(self) -> None:
        async with self._writing:
            await self._record()

    async def _record(self) -> None:
        batch, self._done = self._done, []
        if not batch:
            return
        try:
            if self.before_record is not None:
                await self.before_record(batch)
            new = await asyncio.to_thread(record, self.store, batch)
        except Exception:  # not on cancellation: the thread may still commit them
            self._done[:0] = batch  # one transaction recorded none of them: they go in the next flush
            raise
        self.health.recorded(sum(1 for outcome in batch if outcome.event_id not in new))
        for outcome in batch:
            self._known.discard(outcome.event_id)
            self.handover.finished(outcome.event_id)  # (revoked after it completed without a task)
        self._overlay.recorded(self._per_worker)
        self._pending -= len(batch)
        if self.on_recorded:
            await self.on_recorded([o.event_id for o in batch])
        # Outcomes another engine recorded first (after a rebalance) are counted, and failed to the
        # DLQ, by that engine: here they would be twice.
        report = BatchReport.of([outcome for outcome in batch if outcome.event_id in new])
        if self.on_flush:
            await self.on_flush(report)
        async with self._changed:
            self._changed.notify_all()

    def revoke(self, event_ids: set[str]) -> None:
        """Events of partitions this engine lost: one not started yet is dropped when its turn comes
        (the partition's new owner applies it), one held for another engine is dropped now."""
        self.handover.revoke(event_ids & self._known)
        if self.held is not None:
            self._forget(self.held.drop(event_ids))

    async def settle(self, event_ids: set[str], timeout: float | None) -> set[str]:
        """Wait, at most `timeout` (None: no limit), until none of these events is in flight (recorded
        or dropped); returns those still running, which go on and are recorded when they finish."""
        await self._wake_flusher()
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: not event_ids & self._known), timeout)
        return event_ids & self._known

    @property
    def work(self) -> int:
        """Events accepted or held and not yet recorded."""
        return len(self._known)

    def in_flight(self, event_id: str) -> bool:
        """Accepted and not yet recorded in the store."""
        return event_id in self._known

    async def drain(self, timeout: float | None = None) -> None:
        """Until everything submitted is applied and recorded."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self._pending == 0), timeout)

    async def aclose(self) -> None:
        """Stop: work in flight is handed back (its events stay unconfirmed and are re-published),
        what has finished is recorded in one last flush."""
        for task in list(self._tails.values()):
            task.cancel()
        if self.held is not None:
            self.held.close()
        if self._flusher:
            async with self._writing:  # a batch being recorded is recorded to the end first
                self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self._flush()
