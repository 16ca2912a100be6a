"""The whole flow in one process, for the fast tier: source file → poll → outbox → relay → the
in-memory bus → consumer → pipeline → a scim2-server (in a thread of this process) → the SQLite
store. No broker, no subprocess: what the integration tier proves over Kafka, told without it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.memory_bus import MemoryBroker, MemoryBus
from tests.conftest import make_config, person, scim_users

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Everyone is staff, and in the group of their department (every person here has one).
POLICIES = [
    {
        "name": "staff",
        "when": "true",
        "grant": [{"target": "app", "groups": ["staff", "dept-{{ worker.department | slug }}"]}],
    }
]


class People:
    """The HR export the file source reads."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, *people: dict[str, Any]) -> None:
        self.path.write_text(json.dumps(list(people)))


@asynccontextmanager
async def engine(
    tmp_path: Path,
    scim_url: str,
    people: People,
    broker: MemoryBroker | None = None,
    consume: bool = True,
    **extra: Any,
) -> AsyncIterator[Runtime]:
    """An engine on an in-memory broker (a new one unless given: restarts and neighbours share
    one) and the store at tmp_path/s.db (a restart finds it again)."""
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}",
        scim_url,
        {"name": "hr", "type": "file", "path": str(people.path)},
        **{"policies": POLICIES, **extra},
    )
    async with Runtime(config, bus=MemoryBus(broker), consume=consume) as runtime:
        yield runtime


async def sync(runtime: Runtime) -> int:
    """One poll of the source, applied: the number of changes it found."""
    result = await runtime.poll("hr")
    await runtime.wait_idle(timeout=30)
    return len(result.events)


async def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Wait (without blocking the engine's event loop) until check() answers something true."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return answer


def user(scim: httpx.Client, worker_id: str) -> dict[str, Any]:
    [found] = [u for u in scim_users(scim) if u.get("externalId") == worker_id]
    return found


def groups_of(scim: httpx.Client, user_id: str) -> set[str]:
    """The names of the groups the app lists this account as a member of."""
    groups = scim.get("/Groups", params={"count": 1000}).json().get("Resources", [])
    return {g["displayName"] for g in groups if any(m["value"] == user_id for m in g.get("members") or [])}


def hire(i: int, **kw: Any) -> dict[str, Any]:
    return person(i, **{"title": "Engineer", "department": "Engineering", **kw})
