"""The stored jobs reach the engine whose scheduler fired them, through APScheduler's stock
executor: two engines in one process, each on its own store, each run only their own jobs."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest

from provisioner.engine.config import Config
from provisioner.engine.runtime.scheduler import build_scheduler
from provisioner.engine.store import Store

pytestmark = pytest.mark.fast


class Engine:
    """Just what the scheduled jobs use of a Runtime, counting the due-work rounds it is asked for."""

    def __init__(self, store: Store, owner: str):
        self.config = Config.model_validate({"engine": {"deferred_interval": "0.2s"}})
        self.parts: Any = None
        self.store = store
        self.owner = owner
        self.fired = 0

    async def poll(self, source_name: str, only: list[str] | None = None) -> Any:
        raise AssertionError("no source is configured")

    async def fire_due(self, now: datetime | None = None) -> int:
        self.fired += 1
        return 0

    def retry_due(self, *, worker_id: str | None = None, target: str | None = None, everything: bool = False) -> int:
        return 0

    def wake(self) -> None:
        pass


async def test_each_engine_runs_its_own_stored_jobs(tmp_path):
    engines = [Engine(Store(f"sqlite:///{tmp_path / f'{n}.db'}"), f"engine-{n}") for n in (1, 2)]
    schedulers = [build_scheduler(engine) for engine in engines]  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 20
        while min(e.fired for e in engines) < 2:
            assert time.monotonic() < deadline, [e.fired for e in engines]
            await asyncio.sleep(0.05)
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=False)
    for engine in engines:
        runs = engine.store.schedule.job_runs("deferred:all")
        assert {run.owner for run in runs} == {engine.owner}  # each store saw only its own engine
        assert len(runs) == engine.fired
        engine.store.close()
