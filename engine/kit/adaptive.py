"""How many requests one target gets at once, found rather than guessed: AIMD on what the app says.

The limit grows while the app answers as fast as it did at its best, and while the limit is what
holds requests back; it shrinks when the app says it is overloaded (429, 503, a timeout) and by a
tenth per round trip once two whole round trips in a row answered slower than `tolerance` × the
best recent latency (a queue is forming in front of it). At most one decrease per round trip: a
burst of 429s from requests sent together is one signal, not twenty.

Latency is judged by the fastest answer of each round trip, as TCP Vegas does, not answer by
answer: when the engine's own event loop pauses (a large batch planned, a busy machine), every
answer in flight is read late at once, and an average of single answers took that for the app
slowing down (on a shared 2-core machine, 12 of 22 cuts in a 1,000-worker sync were for answers
read 0.23–0.34 s after sending while the app itself took 0.12 s). A queue at the app delays every
answer, the fastest too, round trip after round trip; a pause of our own delays one round trip's.

The first overload cuts by 30 %; one at about the limit where the app said so before, after a
quiet spell, by a tenth: the app's edge is known, and a deep cut left it underused for many round
trips. Near that edge the limit also grows five times slower: every 429 costs its request a
Retry-After. Bounded by the config's `concurrency` (the ceiling) and 1.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

OVERLOADED = frozenset({429, 503})
FIRST_CUT, EDGE_CUT, SLOW_CUT = 0.7, 0.9, 0.9


@dataclass
class Outcome:
    """What a request's holder reports when it gives its slot back: the HTTP status, None for a
    timeout (overload: the app did not answer in time), or 0, left as it was, when the request
    failed some other way (refused connection): nothing to judge the app's load by."""

    status: int | None = 0


class AdaptiveLimit:
    def __init__(
        self,
        ceiling: int,
        *,
        initial: int | None = None,
        adaptive: bool = True,
        tolerance: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ceiling = max(1, ceiling)
        self.adaptive = adaptive
        self.tolerance = tolerance
        # Slow start from a few: an app that takes 4 at once is never hit by `ceiling` first.
        self.limit = float(self.ceiling if not adaptive else min(self.ceiling, initial or 4))
        self.in_flight = 0
        self.decreases = 0
        self._clock = clock
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._best = float("inf")  # the best latency in the current window
        self._window_best = float("inf")
        self._window_samples = 0
        self._round_fastest = float("inf")  # the fastest answer of the round trip under way
        self._round_ends: float | None = None
        self._slow_rounds = 0  # whole round trips in a row that answered slowly
        self._slow_start = adaptive
        self._quiet_until = 0.0  # no second decrease before this (one round trip after the last)
        self._overloaded_at: float | None = None  # the limit the app last said 429/503 at

    @property
    def current(self) -> int:
        return max(1, int(self.limit))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Outcome]:
        await self._acquire()
        outcome, started = Outcome(), self._clock()
        binding = self.in_flight >= self.current  # the limit, not the load, held requests back
        try:
            yield outcome
        finally:
            self._release()
            self.observe(self._clock() - started, outcome.status, binding=binding)

    def observe(self, latency: float, status: int | None, *, binding: bool = True) -> None:
        """One answer (or timeout): adjust the limit. Public so tests feed it directly."""
        if not self.adaptive or status == 0:
            return
        now = self._clock()
        if status is None or status in OVERLOADED:
            self._overloaded(now, latency)
            return
        if status >= 500:
            return  # an app error says nothing about load
        self._note_latency(latency)
        if self._round_over(now, latency):
            slow = self._round_fastest > self.tolerance * self._best
            self._slow_rounds = self._slow_rounds + 1 if slow else 0
            self._round_fastest, self._round_ends = latency, now + self._best
            # Two in a row: one round trip of late answers is what a pause of our own loop gives.
            if self._slow_rounds >= 2:
                self._decrease(now, SLOW_CUT, latency)
                return
        if binding and not self._slow_rounds:
            # Slow start: +1 per answer (doubling per round trip) until the first decrease; then
            # +1 per round trip (1/limit per answer), +1 per five near the last overload.
            step = 1.0 if self._slow_start else 1.0 / self.limit
            if self._overloaded_at is not None and self.limit >= 0.9 * self._overloaded_at:
                step /= 5
            self.limit = min(float(self.ceiling), self.limit + step)
            self._wake()

    def _round_over(self, now: float, latency: float) -> bool:
        """Whether the round trip under way has ended with this answer (which then starts the next);
        until then the answer only counts towards the round's fastest."""
        if self._round_ends is None:
            self._round_fastest, self._round_ends = latency, now + self._best
            return False
        if now < self._round_ends:
            self._round_fastest = min(self._round_fastest, latency)
            return False
        return True

    def _overloaded(self, now: float, latency: float) -> None:
        edge = self._overloaded_at
        # At the edge found before, and not in an overload that goes on (a cut a round trip ago).
        known = edge is not None and self.limit >= 0.85 * edge and now >= self._quiet_until + 2 * self._round_trip()
        before = self.limit
        if self._decrease(now, EDGE_CUT if known else FIRST_CUT, latency):
            self._overloaded_at = before

    def _round_trip(self) -> float:
        return self._best if self._best != float("inf") else 0.0

    def _note_latency(self, latency: float) -> None:
        # The best latency of a window of answers, renewed every 200: an app that became slower
        # for good (a new region, a bigger tenant) gives a new baseline instead of endless decreases.
        self._window_best = min(self._window_best, latency)
        self._window_samples += 1
        if self._window_samples >= 200:
            self._best, self._window_best, self._window_samples = self._window_best, float("inf"), 0
        self._best = min(self._best, latency)

    def _decrease(self, now: float, factor: float, latency: float) -> bool:
        if now < self._quiet_until:
            return False
        self._slow_start = False
        self.limit = max(1.0, self.limit * factor)
        self.decreases += 1
        self._quiet_until = now + max(latency, self._round_trip() or latency)
        return True

    async def _acquire(self) -> None:
        if self.in_flight < self.current and not self._waiters:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over just as we were cancelled: pass it on
            elif waiter in self._waiters:  # (`_wake` drops a cancelled waiter it meets first)
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.current:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
