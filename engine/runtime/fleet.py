"""This engine as the fleet sees it: a heartbeat row in the store (partitions, lag, progress, why
outcomes cannot be recorded), the renewal of its event claims, and whether it is stalled.

Stalled means: it has work (events in flight or held, or lag on its partitions) and has recorded
nothing for `engine.stall_seconds`. /readyz then answers 503, so a fleet that silently stopped
making progress is no longer reported green."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka.errors import IllegalStateError

from provisioner.engine.config import EngineConfig
from provisioner.engine.runtime.offsets import Offsets
from provisioner.engine.runtime.pipeline import Pipeline
from provisioner.engine.store import Store, store_error

log = logging.getLogger("provisioner.engine")


@dataclass
class Vitals:
    """Counted by this process; rendered by /metrics (runtime/http/metrics.py)."""

    rebalances: int = 0
    paused_seconds: float = 0.0  # spent in revocations, finishing or dropping work of lost partitions
    taken_over: int = 0  # event claims another engine had let lapse
    republished: int = 0  # events a new relay leader sent again
    leading: bool = False  # holds the relay lease
    lag: dict[str, int] = field(default_factory=dict)  # "topic:partition" → records not yet done


@dataclass
class Claimer:
    """The pipeline's claims (runtime/held.py: Claiming), each call one statement for a batch's
    events, run in a worker thread."""

    store: Store
    owner: str
    seconds: float
    vitals: Vitals

    def __call__(self, event_ids: list[str]) -> set[str]:
        claimed = self.store.claims.take(event_ids, self.owner, self.seconds)
        if claimed.taken_over:
            self.vitals.taken_over += claimed.taken_over
            log.info("took over %d events whose engine stopped renewing its claim", claimed.taken_over)
        return claimed.mine

    def elsewhere(self, event_ids: list[str]) -> set[str]:
        return self.store.claims.elsewhere(event_ids, self.owner)


def claimer(store: Store, owner: str, seconds: float, vitals: Vitals) -> Claimer:
    return Claimer(store, owner, seconds, vitals)


@dataclass
class Fleet:
    store: Store
    owner: str
    config: EngineConfig
    pipeline: Pipeline
    offsets: Offsets
    vitals: Vitals
    _idle_at: float = field(default_factory=time.monotonic)  # last beat that found no work

    async def run(self, stopping: Callable[[], bool]) -> None:
        """Beat every third of the claim lease: a claim outlives two missed beats."""
        while not stopping():
            try:
                await self.beat()
            except Exception as exc:  # the store is away: claims run out if it lasts, as they should
                log.warning("engine heartbeat failed: %s", store_error(exc))
            await asyncio.sleep(self.config.claim_seconds / 3)

    async def beat(self) -> None:
        await self._measure_lag()
        work = self.work()
        if work == 0:
            self._idle_at = time.monotonic()
        last = max(self.pipeline.health.progress_at, self._idle_at)
        await self.release_dropped()
        await asyncio.to_thread(self.store.claims.renew, self.owner, self.config.claim_seconds)
        await asyncio.to_thread(
            self.store.engines.beat,
            self.owner,
            host=socket.gethostname(),
            partitions=sorted(self.vitals.lag),
            lag=sum(self.vitals.lag.values()),
            in_flight=self.pipeline.work,
            last_progress=datetime.now(UTC) - timedelta(seconds=time.monotonic() - last),
            recording_error=self.pipeline.health.error,
        )

    async def release_dropped(self) -> list[str]:
        """Release the claims of events dropped for a partition's new owner (which waits on them);
        kept for the next beat if the store does not answer, since the beat renews every claim."""
        dropped = self.pipeline.handover.take_dropped()
        if dropped:
            try:
                await asyncio.to_thread(self.store.claims.release, dropped, self.owner)
            except Exception:
                self.pipeline.handover.give_back(dropped)
                raise
        return dropped

    async def _measure_lag(self) -> None:
        consumer = self.offsets.consumer
        if consumer is None:
            return
        lag: dict[str, int] = {}
        for partition in consumer.assignment():
            end = consumer.highwater(partition)
            done = self.offsets.committed.get(partition)
            try:
                if done is None:
                    done = await consumer.committed(partition)
                if done is None:
                    done = await consumer.position(partition)
            except IllegalStateError:  # revoked meanwhile: its new owner reports it
                continue
            lag[f"{partition.topic}:{partition.partition}"] = max(0, (end or 0) - (done or 0))
        self.vitals.lag = lag

    def work(self) -> int:
        return self.pipeline.work + sum(self.vitals.lag.values())

    def stalled(self) -> str | None:
        """Why this engine counts as stalled, or None."""
        if self.work() == 0:
            return None
        quiet = time.monotonic() - max(self.pipeline.health.progress_at, self._idle_at)
        if quiet < self.config.stall_seconds:
            return None
        why = f"; recording fails: {self.pipeline.health.error}" if self.pipeline.health.error else ""
        return f"{self.work()} events waiting and nothing recorded for {quiet:.0f}s{why}"

    async def aclose(self) -> None:
        """A clean stop, after the pipeline's last flush: the claims on what it did not record are
        handed back, and the row goes (a killed engine's row just ages out of `status`)."""
        try:
            await asyncio.to_thread(self.store.claims.release_all, self.owner)
            await asyncio.to_thread(self.store.engines.gone, self.owner)
        except Exception as exc:
            log.warning("could not hand back this engine's claims and heartbeat row: %s", store_error(exc))
