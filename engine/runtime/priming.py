"""Priming the writers ahead of a batch, as a bulkhead: every target lists at once, and the
batch waits at most `budget` seconds for them. A target still listing then (slow, huge, or
paging without end) keeps listing in the background for the batches after, while this batch's
lookups on it go one by one; the other targets' work never waits on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from provisioner.engine.contracts.protocols import Primes, Target

log = logging.getLogger("provisioner.apply")

PRIME_BUDGET = 10.0  # seconds a batch waits for the writers' listings


class Primer:
    def __init__(self, budget: float = PRIME_BUDGET):
        self.budget = budget
        self._running: dict[str, asyncio.Task[None]] = {}
        # Targets whose listing outlasted a batch's budget and still runs: shown as unhealthy
        # (provisioner_target_listing_stalled) until it ends.
        self.stalled: set[str] = set()

    async def prime(self, targets: Mapping[str, Target], expected: Mapping[str, int]) -> list[str]:
        """Prime each target with its expected lookups; the names of those still priming when the
        budget ran out."""
        for name, target in targets.items():
            if name not in self._running and isinstance(target, Primes):  # one listing per target at a time
                task = asyncio.create_task(self._one(name, target, expected.get(name, 0)))
                self._running[name] = task
                task.add_done_callback(lambda _, name=name: self._ended(name))  # type: ignore[misc]
        # A listing that already outlasted an earlier batch's budget is not waited on again: every
        # batch after it would otherwise pay the whole budget while that one app keeps listing.
        waiting = [self._running[n] for n in targets if n in self._running and n not in self.stalled]
        if waiting:
            await asyncio.wait(waiting, timeout=self.budget)
        slow = [name for name in targets if name in self._running]
        newly = [name for name in slow if name not in self.stalled]  # said once, not once per batch
        self.stalled.update(slow)
        for name in newly:
            log.warning(
                "target %s: still listing accounts after %.1fs; this batch looks it up one by one", name, self.budget
            )
        return slow

    def _ended(self, name: str) -> None:
        self._running.pop(name, None)
        self.stalled.discard(name)

    async def _one(self, name: str, target: Primes, lookups: int) -> None:
        try:
            await target.prime(lookups)
        except Exception as exc:  # priming is an optimisation; lookups still work one by one
            log.warning("target %s: could not list accounts ahead of the batch: %s", name, exc)

    async def aclose(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
