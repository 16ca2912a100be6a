"""Adaptive per-target concurrency (engine/kit/adaptive.py), fed latencies and statuses directly."""

from __future__ import annotations

import asyncio
import heapq

import httpx
import pytest

from provisioner.engine.kit.adaptive import AdaptiveLimit
from provisioner.engine.kit.http import RetryPolicy, resilient_client

pytestmark = pytest.mark.fast


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_slow_start_reaches_the_ceiling_while_the_app_keeps_its_pace():
    clock = Clock()
    limit = AdaptiveLimit(32, clock=clock)
    assert limit.current == 4  # a few at first, never the whole ceiling at once
    for _ in range(28):
        clock.now += 0.01
        limit.observe(0.1, 200)
    assert limit.current == 32
    for _ in range(100):
        limit.observe(0.1, 200)
    assert limit.current == 32  # bounded by the config's ceiling


def test_overload_cuts_once_per_round_trip_then_grows_by_one_per_round_trip_slower_near_the_edge():
    clock = Clock()
    limit = AdaptiveLimit(64, initial=40, clock=clock)
    limit.observe(0.1, 200)  # slow start: 41
    for _ in range(20):  # twenty 429s of requests sent together: one signal
        limit.observe(0.1, 429)
    assert limit.current == 28 and limit.decreases == 1  # 41 × 0.7
    clock.now += 0.2  # a round trip later the next 503 counts again
    limit.observe(0.1, 503)
    assert limit.current == 20 and limit.decreases == 2  # 28.7 × 0.7 = 20.09
    clock.now += 0.2
    for _ in range(20):  # congestion avoidance now: +1 per round trip (20 answers at limit 20)
        limit.observe(0.1, 200)
    assert 21.0 < limit.limit < 21.1
    while limit.limit < 0.9 * 28.7:  # back near where the app said 429 last
        limit.observe(0.1, 200)
    near = limit.limit
    for _ in range(26):  # one round trip's answers: a fifth of a slot
        limit.observe(0.1, 200)
    assert 0.19 < limit.limit - near < 0.21


def test_a_timeout_is_overload_and_a_refused_connection_says_nothing():
    limit = AdaptiveLimit(16, initial=16, clock=Clock())
    limit.observe(5.0, 0)
    assert limit.current == 16
    limit.observe(30.0, None)
    assert limit.current == 11  # 16 × 0.7


def test_answers_slowing_down_shrink_the_limit_gently():
    clock = Clock()
    limit = AdaptiveLimit(50, initial=50, clock=clock)
    for _ in range(10):
        limit.observe(0.1, 200)
    for _ in range(6):  # a queue forms in front of the app: 0.1 s became 0.5 s, a round trip apart
        clock.now += 1.0
        limit.observe(0.5, 200)
    # the first slow round trip may be a pause of our own; from the second on a tenth less per
    # round trip, not halved
    assert limit.decreases == 4 and limit.current == int(50 * 0.9**4)


def test_the_limit_grows_only_while_it_holds_requests_back():
    limit = AdaptiveLimit(32, clock=Clock())
    for _ in range(50):
        limit.observe(0.1, 200, binding=False)
    assert limit.current == 4


def test_fixed_when_not_adaptive():
    limit = AdaptiveLimit(12, adaptive=False, clock=Clock())
    assert limit.current == 12
    limit.observe(0.1, 429)
    limit.observe(9.0, 200)
    assert limit.current == 12


def test_an_app_with_room_for_24_is_found():
    """A simulated app: up to 24 at once answer in 0.1 s, more get 429. One round trip per step: the
    limit is used in full, each request answered."""
    clock = Clock()
    limit = AdaptiveLimit(64, clock=clock)
    seen = []
    for _ in range(300):
        clock.now += 0.1
        in_flight = limit.current
        for _ in range(in_flight):
            limit.observe(0.1, 200 if in_flight <= 24 else 429)
        seen.append(limit.current)
    steady = seen[100:]
    assert max(steady) <= 25  # never far past what the app takes
    assert sum(steady) / len(steady) > 24 * 0.85  # the saw-tooth stays near it (22.1 on average)


async def test_in_flight_never_passes_the_limit_and_a_cancelled_waiter_frees_nothing():
    limit = AdaptiveLimit(3, initial=3, adaptive=False)
    peak, running = 0, 0
    gate = asyncio.Event()

    async def request() -> None:
        nonlocal peak, running
        async with limit.slot() as outcome:
            running += 1
            peak = max(peak, running)
            await gate.wait()
            running -= 1
            outcome.status = 200

    tasks = [asyncio.create_task(request()) for _ in range(10)]
    await asyncio.sleep(0.01)
    assert limit.in_flight == 3 and running == 3
    tasks[-1].cancel()  # a waiter given up: its place in the queue goes, no slot leaks
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks[:-1])
    assert peak == 3 and limit.in_flight == 0


async def test_the_http_client_holds_a_slot_per_attempt_and_learns_from_429():
    answers = iter([429, 429, 200] * 10)

    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), headers={"Retry-After": "0"})

    limit = AdaptiveLimit(20, initial=20)
    client = resilient_client("http://app.test/", policy=RetryPolicy(max_attempts=3), limit=limit)
    client._transport.wrapped = httpx.MockTransport(app)  # type: ignore[attr-defined]
    response = await client.get("Users")
    assert response.status_code == 200
    # Each attempt held a slot and reported: two 429s one after the other (a backoff apart), two cuts.
    assert limit.current == 9 and limit.decreases == 2  # 20 × 0.7 × 0.7
    assert limit.in_flight == 0
    await client.aclose()


@pytest.mark.parametrize("ceiling", [1, 5])
def test_the_ceiling_is_never_passed_even_from_a_higher_start(ceiling: int):
    limit = AdaptiveLimit(ceiling, initial=100, clock=Clock())
    assert limit.current == ceiling


async def test_a_waiter_cancelled_just_before_a_slot_frees_ends_cancelled_and_leaks_nothing():
    limit = AdaptiveLimit(1, adaptive=False)
    holder = limit.slot()
    await holder.__aenter__()

    async def wait_for_a_slot() -> None:
        async with limit.slot():
            raise AssertionError("never given a slot: it was cancelled")

    waiting = asyncio.create_task(wait_for_a_slot())
    await asyncio.sleep(0)  # (one turn: it is now queued for a slot)
    waiting.cancel()  # its future is cancelled now; the task sees it on its next turn
    await holder.__aexit__(None, None, None)  # the slot frees in between: the cancelled waiter is skipped
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limit.in_flight == 0
    async with limit.slot():
        assert limit.in_flight == 1


def test_a_pause_of_our_own_event_loop_is_not_the_app_slowing_down():
    """Every answer in flight comes back late at once after the engine itself paused (a large batch
    planned, the GC): the round trip's fastest answer was on time, so the limit stays."""
    clock = Clock()
    limit = AdaptiveLimit(64, initial=16, clock=clock)
    limit.observe(0.1, 200, binding=False)
    for _ in range(5):  # steady round trips
        clock.now += 0.1
        for _ in range(16):
            limit.observe(0.1, 200, binding=False)
    clock.now += 0.4  # a 0.4 s pause: sixteen answers read together, each 0.4 s late
    for _ in range(16):
        limit.observe(0.5, 200, binding=False)
    clock.now += 0.1  # then the answers to what was sent after the pause, on time again
    for _ in range(16):
        limit.observe(0.1, 200, binding=False)
    assert limit.decreases == 0 and limit.current == 16


def test_at_the_edge_found_before_an_overload_cuts_by_a_tenth_and_an_overload_that_goes_on_by_30_percent():
    clock = Clock()
    limit = AdaptiveLimit(64, initial=20, clock=clock)
    limit.observe(0.1, 200, binding=False)
    limit.observe(0.1, 429)  # the first: the edge is unknown
    assert limit.limit == pytest.approx(14.0)
    while limit.limit < 19.9:  # back near 20, a round trip at a time
        clock.now += 0.1
        for _ in range(limit.current):
            limit.observe(0.1, 200)
    limit.observe(0.1, 429)  # at the edge again, after a quiet spell: a tenth
    at_edge = limit.limit
    assert 0.9 * 19.9 <= at_edge <= 0.9 * 20.1 and limit.decreases == 2
    clock.now += 0.15  # the next round trip says 429 too: the app took less than before
    limit.observe(0.1, 429)
    assert limit.limit == pytest.approx(at_edge * 0.7) and limit.decreases == 3


def _served(limit: AdaptiveLimit, capacity: int, pause_every: float = 0.0, seconds: float = 60.0) -> int:
    """A discrete-event app (fake clock): up to `capacity` requests at once answered in 0.1 s, more
    answered 429 at once with Retry-After 1 s; 64 workers always want a slot. Every `pause_every`
    seconds the client's loop pauses 0.3 s: answers arriving meanwhile are read after it. Returns
    the requests the app answered 200."""
    clock = Clock()
    limit._clock = clock
    queue: list[tuple[float, int, str, float]] = []  # (when, order, what, sent)
    wanting, at_app, served, order = 64, 0, 0, 0
    pauses = [p * pause_every for p in range(1, int(seconds / pause_every) + 1)] if pause_every else []

    def after_pause(t: float) -> float:
        return next((p + 0.3 for p in pauses if p <= t < p + 0.3), t)

    def send() -> None:
        nonlocal wanting, at_app, order
        while wanting and limit.in_flight < limit.current:
            wanting, limit.in_flight, order = wanting - 1, limit.in_flight + 1, order + 1
            full = at_app >= capacity
            at_app += 0 if full else 1
            heapq.heappush(queue, (clock.now + (0.002 if full else 0.1), order, "429" if full else "app", clock.now))

    send()
    while queue and queue[0][0] < seconds:
        when, n, what, sent = heapq.heappop(queue)
        if what != "app" and after_pause(when) != when:  # our loop is paused: read after it
            heapq.heappush(queue, (after_pause(when), n, what, sent))
            continue
        clock.now = when
        if what == "app":  # the app is free again; its answer is read now or after a pause
            at_app -= 1
            heapq.heappush(queue, (when, n, "200", sent))
            continue
        if what in ("200", "429"):
            limit.in_flight -= 1
            limit.observe(when - sent, int(what))
        if what == "200":
            served, wanting = served + 1, wanting + 1
        elif what == "429":
            heapq.heappush(queue, (when + 1.0, n, "back", sent))  # Retry-After: 1
        else:
            wanting += 1
        send()
    return served


@pytest.mark.parametrize("pause_every", [0.0, 1.0])
def test_adaptive_serves_within_a_tenth_of_the_best_fixed_setting(pause_every: float):
    """The bench's case (bench/cluster.py --only adaptive) in simulated time: an app taking 16 at
    once; adaptive from a ceiling of 64 against the best fixed setting, with our own loop pausing
    0.3 s every second or not at all."""
    best = _served(AdaptiveLimit(16, adaptive=False), 16, pause_every)
    adaptive = _served(AdaptiveLimit(64), 16, pause_every)
    assert adaptive >= 0.93 * best
