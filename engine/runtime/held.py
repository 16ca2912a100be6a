"""Events another engine holds a claim on, waiting their turn.

Before its writes run an event is claimed in the store (one statement per fetched batch). After a
rebalance the partition's new owner may be fetching events the old owner is still applying: those
come back unclaimed and wait here, with their worker's later events behind them in order, until
the other engine records them (then they are done here too) or its claim lapses (it died or gave
them up: then they are taken and applied).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Container
from typing import Any, Protocol, TypeVar

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.store import store_error

log = logging.getLogger("provisioner.pipeline")
_T = TypeVar("_T")


async def read_retrying(read: Callable[[Any], _T], arg: Any) -> _T:
    """A store call the consumer cannot go on without: tried again every second while the store is
    busy or unreachable. Consumption pauses meanwhile; nothing is skipped or dropped."""
    while True:
        try:
            return await asyncio.to_thread(read, arg)
        except Exception as exc:
            log.warning("could not read the store (%s); trying again in a second", store_error(exc))
            await asyncio.sleep(1.0)


class Claiming(Protocol):
    """Event claims in the store (runtime/fleet.py: Claimer); blocking calls, run in a thread."""

    def __call__(self, event_ids: list[str]) -> set[str]:
        """Claim these events: returns those this engine holds now."""
        ...

    def elsewhere(self, event_ids: list[str]) -> set[str]:
        """Those of these events another live engine holds (it may be applying them)."""
        ...


class Held:
    def __init__(
        self,
        claim: Claiming,
        applied: Callable[[list[str]], set[str]],
        accept: Callable[[list[WorkerEvent]], Awaitable[None]],
        finished: Callable[[list[str]], Awaitable[None]],
        interval: float = 1.0,
    ):
        self.claim = claim  # event ids → those this engine holds now
        self.applied = applied  # event ids → those whose outcome is recorded
        self.accept = accept  # events now ours, to apply
        self.finished = finished  # events another engine recorded
        self.interval = interval
        self._by_worker: dict[str, list[WorkerEvent]] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return sum(len(held) for held in self._by_worker.values())

    async def elsewhere(self, events: list[WorkerEvent]) -> set[str]:
        """Those of these events another live engine holds a claim on."""
        return await read_retrying(self.claim.elsewhere, [ev.id for ev in events])

    def first_free(self, events: list[WorkerEvent], busy: Container[str], elsewhere: set[str]) -> list[WorkerEvent]:
        """The first event of each worker with nothing of theirs before it: not `busy` (in flight
        here), nothing held here, no earlier event in `events`; and not one another engine holds
        (`elsewhere`), which may be applying it from a plan of its own."""
        seen: set[str] = set()
        free: list[WorkerEvent] = []
        for ev in events:
            worker = ev.subject
            if worker not in seen and worker not in busy and worker not in self._by_worker and ev.id not in elsewhere:
                free.append(ev)
            seen.add(worker)
        return free

    async def sort(self, events: list[WorkerEvent]) -> list[WorkerEvent]:
        """The events this engine may apply now; the others wait here."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="claim-rechecker")
        mine = await read_retrying(self.claim, [e.id for e in events]) if events else set()
        ready: list[WorkerEvent] = []
        for ev in events:
            if ev.id in mine and ev.subject not in self._by_worker:
                ready.append(ev)
            else:  # held by a live engine, or behind an event of this worker that is
                self._by_worker.setdefault(ev.subject, []).append(ev)
        return ready

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._by_worker:
                try:
                    await self.recheck()
                except Exception as exc:  # the store is away: the held events wait for the next look
                    log.warning("could not look at events other engines hold (%s)", store_error(exc))

    async def recheck(self) -> None:
        ids = [ev.id for held in self._by_worker.values() for ev in held]
        done = await asyncio.to_thread(self.applied, ids)
        mine = await asyncio.to_thread(self.claim, [i for i in ids if i not in done])
        finished: list[str] = []
        ready: list[WorkerEvent] = []
        for worker, held in list(self._by_worker.items()):
            while held and held[0].id in done:
                finished.append(held.pop(0).id)
            while held and held[0].id in mine:
                ready.append(held.pop(0))
            if not held:
                del self._by_worker[worker]
        # Accepted first: reporting `finished` waits (offsets are committed), and a worker's later
        # event arriving meanwhile would find the worker free here and run before these.
        if ready:
            await self.accept(ready)
        if finished:
            await self.finished(finished)

    def drop(self, event_ids: set[str]) -> list[str]:
        """Stop waiting for these events (their partition moved away); returns those that were here."""
        dropped: list[str] = []
        for worker, held in list(self._by_worker.items()):
            dropped += [ev.id for ev in held if ev.id in event_ids]
            self._by_worker[worker] = [ev for ev in held if ev.id not in event_ids]
            if not self._by_worker[worker]:
                del self._by_worker[worker]
        return dropped

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
