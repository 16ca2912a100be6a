"""Fast tier: a second engine joins the consumer group mid-wave, in one process (two engines on one
in-memory broker and one SQLite store). Partitions move while events are in flight: the first
engine hands the lost ones over (runtime/rebalance.py), every change is written once and the wave
converges. tests/test_rebalance.py proves the same with `provisioner run` processes on Kafka."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisioner.engine.kit.servers import BackgroundServer, scim_app, serve_wsgi
from provisioner.engine.runtime.memory_bus import MemoryBroker
from tests.conftest import scim_users
from tests.counting import CountingApp
from tests.flow import People, engine, hire, until

pytestmark = pytest.mark.fast

WORKERS = 60


class _Gate:
    """Lets the first `opened` user creates through and holds the others until released: the first
    engine has events in flight (running, and queued behind them) when the partitions move."""

    def __init__(self, inner: Any, opened: int):
        self.inner, self.opened = inner, opened
        self.held = 0
        self._lock = threading.Lock()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST" and environ.get("PATH_INFO", "").startswith("/Users"):
            with self._lock:
                self.opened -= 1
                holding = self.opened < 0
                self.held += holding
            if holding:
                self._released.wait(timeout=30)  # the app's thread, not the test, waits
        return self.inner(environ, start_response)


@pytest.fixture
def gated() -> Iterator[tuple[CountingApp, _Gate, BackgroundServer, httpx.Client]]:
    gate = _Gate(scim_app(), opened=10)
    counting = CountingApp(gate)
    with serve_wsgi(counting) as server, httpx.Client(base_url=server.url) as client:
        yield counting, gate, server, client
        gate.release()


async def test_an_engine_joining_mid_wave_writes_each_change_once(tmp_path, gated):
    counting, gate, server, scim = gated
    people = People(tmp_path / "people.json")
    people.write(*[hire(i) for i in range(WORKERS)])
    broker = MemoryBroker(partitions=4, max_records=10)
    # In-flight events of lost partitions get half a second, then go on and are recorded when they
    # finish, their claims keeping the new owner off them.
    settings: dict[str, Any] = {
        "target": {"bulk": False, "concurrency": 4},
        "engine": {"concurrency": 4, "revoke_wait": 0.5},
    }
    async with engine(tmp_path, server.url, people, broker=broker, **settings) as first:
        await first.poll("hr")
        await until(lambda: gate.held > 0, "the first engine's writes to be held mid-wave")
        async with engine(tmp_path, server.url, people, broker=broker, **settings) as second:
            assert [len(m.owned) for m in broker.members] == [2, 2]  # the partitions moved
            assert first.vitals.rebalances == 1
            gate.release()
            await until(
                lambda: first.store.outbox.pending_count() == 0 and len(first.store.links.all()) == WORKERS,
                "the wave to converge",
                timeout=60,
            )
        assert second.totals.applied > 0  # the second engine took a share of the wave
    assert counting.writes["POST"] == WORKERS  # one create per person: nothing applied twice
    assert len(scim_users(scim)) == WORKERS
