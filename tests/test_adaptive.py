"""Adaptive per-target concurrency (engine/kit/adaptive.py), fed latencies and statuses directly."""

from __future__ import annotations

import asyncio

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
    # the first slow answer only moves the average; then a tenth less per round trip, not halved
    assert limit.decreases == 5 and limit.current == int(50 * 0.9**5)


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
