"""Claims guard writes to the apps (SQLite and PostgreSQL): an event whose plan writes nothing is
planned before any claim and recorded without one, unless an earlier event of its worker is in
flight, held for another engine, or earlier in the same batch: then it waits its turn, claimed, as
every event did before."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.engine.contracts.events import WorkerEvent, change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.runtime.apply import Planned
from provisioner.engine.runtime.fleet import Claimer, Vitals
from provisioner.engine.runtime.pipeline import Pipeline
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store
from tests.test_handover import _until, _Writer

pytestmark = pytest.mark.fast

A, B = "elsewhere:1:1:a", "elsewhere:2:2:b"


class _Quiet(_Writer):
    """Events of a worker titled "quiet" plan nothing to write; the others one action each."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: list[str] = []

    def plan_event(self, ev: WorkerEvent, known: Any, approved: Any = ()) -> Planned:
        self.plans.append(ev.id)
        assert ev.data.worker is not None
        if ev.data.worker.title == "quiet":
            outcome = EventOutcome(ev.id, ev)
            outcome.settled = ["*", "app"]
            return Planned(outcome, [], {})
        return super().plan_event(ev, known, approved)

    async def apply_event(self, planned: Planned) -> EventOutcome:
        if not planned.actions:  # as the Applier: nothing to run, the outcome is complete
            return planned.outcome
        return await super().apply_event(planned)


def _event(n: int, title: str) -> WorkerEvent:
    worker = Worker(id=f"hr:{n}", source="hr", remote_id=str(n), first_name=f"P{n}", title=title)
    return change_event("hr", None, None, worker)


class _Counting(Claimer):
    """Claims as an engine's, and the ids it was asked to claim."""

    def __init__(self, store: Store, claimed: list[str]) -> None:
        super().__init__(store, A, 30, Vitals())
        self.claimed = claimed

    def __call__(self, event_ids: list[str]) -> set[str]:
        self.claimed.extend(event_ids)
        return super().__call__(event_ids)


def _pipeline(store: Store, writer: _Writer, claimed: list[str], recheck: float = 0.05) -> Pipeline:
    claim = _Counting(store, claimed)
    return Pipeline(writer, store, flush_interval=0.01, claim=claim, recheck_interval=recheck)  # type: ignore[arg-type]


async def test_only_events_that_write_or_wait_behind_another_are_claimed(store_url: str) -> None:
    store, writer, claimed = Store(store_url), _Quiet(), list[str]()
    pipeline = _pipeline(store, writer, claimed)
    quiet = _event(1, "quiet")
    writes = _event(2, "writes")
    behind = _event(2, "quiet")  # nothing to write, but after an event of its worker that writes
    store.outbox.add([quiet, writes, behind])  # as the poll wrote them
    await pipeline.submit([quiet, writes, behind])
    await pipeline.drain(10)
    assert claimed == [writes.id, behind.id]  # one claim statement, in batch order
    assert writer.applied == [writes.id]
    assert writer.plans == [quiet.id, writes.id, behind.id]  # each planned once
    assert store.outbox.applied([quiet.id, writes.id, behind.id]) == {quiet.id, writes.id, behind.id}
    assert store.claims.live() == {}  # recording ended the claims taken
    await pipeline.aclose()
    store.close()


async def test_an_event_behind_one_held_for_another_engine_waits_for_it(store_url: str) -> None:
    store, writer, claimed = Store(store_url), _Quiet(), list[str]()
    first = _event(1, "writes")
    later = _event(1, "quiet")
    store.outbox.add([first, later])  # as the poll wrote them
    store.claims.take([first.id], B, 60)  # B applies `first`
    pipeline = _pipeline(store, writer, claimed, recheck=3600)  # rechecked by hand below
    await pipeline.submit([first])
    await pipeline.submit([later])  # a later batch: nothing to write, but hr:1 waits behind `first`
    assert pipeline.held is not None and len(pipeline.held) == 2
    assert claimed == [first.id, later.id]
    assert store.outbox.applied([later.id]) == set()
    record(store, [EventOutcome(first.id, first)])  # B records `first`
    await pipeline.held.recheck()
    await pipeline.drain(10)
    assert store.outbox.applied([first.id, later.id]) == {first.id, later.id}
    assert writer.applied == []  # `first` was B's; `later` writes nothing
    await pipeline.aclose()
    store.close()


async def test_a_quiet_event_of_a_worker_in_flight_here_waits_for_it(store_url: str) -> None:
    store, writer, claimed = Store(store_url), _Quiet(), list[str]()
    pipeline = _pipeline(store, writer, claimed)
    writes = _event(1, "writes")
    later = _event(1, "quiet")
    store.outbox.add([writes, later])  # as the poll wrote them
    writer.gate.clear()
    await pipeline.submit([writes])
    await _until(lambda: writer.started == [writes.id], "the write to be under way")
    await pipeline.submit([later])  # hr:1 is in flight: planned only once `writes` has finished
    assert writer.plans == [writes.id] and later.id in claimed
    writer.gate.set()
    await pipeline.drain(10)
    assert writer.plans == [writes.id, later.id]
    assert store.outbox.applied([writes.id, later.id]) == {writes.id, later.id}
    await pipeline.aclose()
    store.close()


async def test_an_event_another_engine_holds_is_left_to_it_even_with_nothing_to_write(store_url: str) -> None:
    """That engine may be applying it from a plan of its own (another policy version, a grant
    approved since): recording "nothing to do" first would leave its writes unrecorded."""
    store, writer, claimed = Store(store_url), _Quiet(), list[str]()
    quiet = _event(1, "quiet")
    store.outbox.add([quiet])  # as the poll wrote them
    store.claims.take([quiet.id], B, 60)
    pipeline = _pipeline(store, writer, claimed, recheck=3600)
    await pipeline.submit([quiet])
    assert pipeline.held is not None and len(pipeline.held) == 1 and writer.plans == []
    assert claimed == [quiet.id]
    record(store, [EventOutcome(quiet.id, quiet)])  # B records it
    await pipeline.held.recheck()
    await pipeline.drain(10)
    assert pipeline.work == 0 and writer.plans == []  # done there: not planned here at all
    await pipeline.aclose()
    store.close()
