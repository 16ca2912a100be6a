"""Two engines' pipelines on one store (SQLite and PostgreSQL), with a writer that can be held:
an event another engine has claimed is never applied a second time — it waits until that engine
records it, or its claim lapses and it is taken over (in order per worker) — and events of lost
partitions not yet started are dropped for the new owner while the one writing finishes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from provisioner.engine.contracts.events import WorkerEvent, change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.runtime.apply import Planned
from provisioner.engine.runtime.fleet import Vitals, claimer
from provisioner.engine.runtime.pipeline import Pipeline
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store

pytestmark = pytest.mark.fast


class _Writer:
    """Stands in for the planner and the writers: every event has one action; `gate` holds them."""

    def __init__(self) -> None:
        self.targets: dict[str, Any] = {"app": None}
        self.applied: list[str] = []
        self.started: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    def links_needed(self, events: list[WorkerEvent]) -> set[str]:
        return {ev.subject for ev in events}

    async def prime(self, events: Any, links: Any) -> None:
        return None

    def plan_event(self, ev: WorkerEvent, known: Any, approved: Any = ()) -> Planned:
        return Planned(EventOutcome(ev.id, ev), [object()], {})  # type: ignore[list-item]

    async def apply_event(self, planned: Planned) -> EventOutcome:
        ev = planned.outcome.event
        assert ev is not None
        self.started.append(ev.id)
        await self.gate.wait()
        self.applied.append(ev.id)
        outcome = EventOutcome(ev.id, ev)
        outcome.settled = ["*", "app"]
        return outcome


def _events() -> list[WorkerEvent]:
    # hr:1 has two events (their order matters), hr:2 one
    events = []
    for n, title in ((1, "a"), (1, "b"), (2, "a")):
        worker = Worker(id=f"hr:{n}", source="hr", remote_id=str(n), first_name=f"P{n}", title=title)
        events.append(change_event("hr", None, None, worker))
    return events


def _engine(store: Store, owner: str, seconds: float, recorded: list[str], concurrency: int = 4) -> tuple:
    writer, vitals = _Writer(), Vitals()

    async def on_recorded(ids: list[str]) -> None:
        recorded.extend(ids)

    pipeline = Pipeline(
        writer,  # type: ignore[arg-type]
        store,
        concurrency=concurrency,
        flush_interval=0.01,
        on_recorded=on_recorded,
        claim=claimer(store, owner, seconds, vitals),
        recheck_interval=0.05,
    )
    return pipeline, writer, vitals


async def _until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout:.0f}s"
        await asyncio.sleep(0.02)


async def test_an_event_another_engine_holds_waits_until_it_is_recorded_there(store_url):
    store = Store(store_url)
    events = _events()
    store.outbox.add(events)  # as the poll wrote them
    recorded_a: list[str] = []
    recorded_b: list[str] = []
    a, writer_a, _ = _engine(store, "elsewhere:1:1:a", 30, recorded_a)
    b, writer_b, _ = _engine(store, "elsewhere:2:2:b", 30, recorded_b)
    writer_a.gate.clear()
    await a.submit(events)
    await _until(lambda: len(writer_a.started) == 2, "engine A to be writing")
    # A rebalance hands the same records to B while A is still writing them.
    await b.submit(events)
    assert b.work == 3 and writer_b.started == []
    writer_a.gate.set()
    await a.drain(10)
    await _until(lambda: b.work == 0, "B to see them recorded by A")
    assert writer_b.applied == []  # not one write twice
    assert sorted(recorded_b) == sorted(e.id for e in events)  # B's offsets may move past them
    assert store.outbox.applied([e.id for e in events]) == {e.id for e in events}
    await a.aclose()
    await b.aclose()
    store.close()


async def test_an_engine_that_stops_renewing_its_claims_has_them_taken_over_in_order(store_url):
    store = Store(store_url)
    events = _events()
    store.outbox.add(events)  # as the poll wrote them
    a, writer_a, _ = _engine(store, "elsewhere:1:1:a", 0.5, [])  # its claims lapse after 0.5 s
    b, writer_b, vitals_b = _engine(store, "elsewhere:2:2:b", 30, [])
    writer_a.gate.clear()  # A hangs (or died) with the events claimed
    await a.submit(events)
    await b.submit(events)
    await _until(lambda: b.work == 0, "B to take the lapsed claims over and record the events")
    assert writer_b.applied.index(events[0].id) < writer_b.applied.index(events[1].id)  # hr:1 in order
    assert sorted(writer_b.applied) == sorted(e.id for e in events)
    assert vitals_b.taken_over == 3
    assert store.outbox.applied([e.id for e in events]) == {e.id for e in events}
    writer_a.gate.set()
    await a.aclose()
    await b.aclose()
    store.close()


async def test_revoked_events_not_yet_started_are_dropped_and_the_running_one_finishes(store_url):
    store = Store(store_url)
    events = _events()
    store.outbox.add(events)  # as the poll wrote them
    a, writer_a, _ = _engine(store, "elsewhere:1:1:a", 30, [], concurrency=1)
    writer_a.gate.clear()
    await a.submit(events)
    await _until(lambda: len(writer_a.started) == 1, "one event to be writing")
    running = writer_a.started[0]
    a.revoke({e.id for e in events})
    still = await a.settle({e.id for e in events}, timeout=0.5)
    assert still == {running}  # the one writing goes on; the two waiting their turn were dropped
    dropped = a.handover.take_dropped()
    assert sorted(dropped) == sorted(e.id for e in events if e.id != running)
    writer_a.gate.set()
    assert await a.settle({running}, timeout=5) == set()
    assert writer_a.applied == [running]
    assert store.outbox.applied([e.id for e in events]) == {running}
    # The new owner gets the dropped ones: their claims were released by the rebalance listener.
    store.claims.release(dropped, "elsewhere:1:1:a")
    b, writer_b, _ = _engine(store, "elsewhere:2:2:b", 30, [])
    await b.submit(events)
    await b.drain(10)
    assert sorted(writer_b.applied) == sorted(dropped)
    await a.aclose()
    await b.aclose()
    store.close()


class _SlowPriming(_Writer):
    """A writer whose listing (prime) can be held: a batch waits there before its tasks exist."""

    def __init__(self) -> None:
        super().__init__()
        self.listing = asyncio.Event()
        self.listing.set()

    async def prime(self, events: Any, links: Any) -> None:
        await self.listing.wait()


async def test_an_event_revoked_while_priming_and_fetched_again_is_still_applied(store_url):
    """Eager rebalances revoke every partition and often hand one straight back. An event revoked
    before its task existed, then fetched again (skipped: it is in flight), must not be dropped
    afterwards: its offset would be committed and nobody would ever apply it."""
    store = Store(store_url)
    first, second = _events()[0], _events()[2]  # two workers
    store.outbox.add(_events())  # as the poll wrote them
    writer = _SlowPriming()
    a = Pipeline(
        writer,  # type: ignore[arg-type]
        store,
        concurrency=1,
        flush_interval=0.01,
        claim=claimer(store, "elsewhere:1:1:a", 30, Vitals()),
        recheck_interval=0.05,
    )
    writer.gate.clear()
    await a.submit([first])
    await _until(lambda: writer.started == [first.id], "the first event to hold the only slot")
    writer.listing.clear()
    submitting = asyncio.create_task(a.submit([second]))
    await _until(lambda: a.in_flight(second.id), "the second event to be accepted (priming)")
    a.revoke({second.id})
    assert await a.settle({second.id}, timeout=0.05) == {second.id}
    writer.listing.set()
    await submitting
    # The partition came back to this engine: the same record is fetched again (it waits until the
    # revocation has dropped the first copy, then takes it anew).
    again = asyncio.create_task(a.submit([second]))
    writer.gate.set()
    assert (await again).skipped == 0
    await a.drain(10)
    assert writer.applied == [first.id, second.id]
    assert store.outbox.applied([second.id]) == {second.id}
    assert a.handover.take_dropped() == []  # its claim stays with this engine until recorded
    await a.aclose()
    store.close()


async def test_a_held_event_taken_over_runs_before_a_later_event_of_its_worker(store_url):
    """The recheck that takes a held event over may first report another one finished elsewhere
    (which commits offsets: a wait). A later event of the same worker arriving meanwhile must not
    find the worker free and run first."""
    store = Store(store_url)
    other, first, later = _events()[2], _events()[0], _events()[1]  # first and later: both hr:1
    store.outbox.add(_events())  # as the poll wrote them
    b = "elsewhere:2:2:b"
    store.claims.take([other.id, first.id], b, 60)
    committing = asyncio.Event()
    offsets_may_commit = asyncio.Event()

    async def on_recorded(ids: list[str]) -> None:
        committing.set()
        await offsets_may_commit.wait()

    writer = _Writer()
    a = Pipeline(
        writer,  # type: ignore[arg-type]
        store,
        flush_interval=0.01,
        on_recorded=on_recorded,
        claim=claimer(store, "elsewhere:1:1:a", 30, Vitals()),
        recheck_interval=3600,  # rechecked by hand below
    )
    await a.submit([other, first])
    assert a.work == 2 and writer.started == []  # both held: B has them
    store.claims.take([first.id], b, -1)  # B's claim on `first` lapses...
    record(store, [EventOutcome(other.id, other)])  # ...and B records `other`
    assert a.held is not None
    rechecking = asyncio.create_task(a.held.recheck())
    await _until(committing.is_set, "the recheck to report `other` done")
    await a.submit([later])  # hr:1's next event arrives while the recheck waits
    offsets_may_commit.set()
    await rechecking
    await a.drain(10)
    assert writer.applied == [first.id, later.id]
    await a.aclose()
    store.close()
