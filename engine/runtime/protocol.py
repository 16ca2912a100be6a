"""What the parts around the running engine (scheduled jobs, webhooks, the HTTP API) need of it.

A Protocol rather than the Runtime class itself, so those parts import the engine's shape and
the Runtime imports them: one direction, no cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from provisioner.engine.config import Config
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.store import Store


class Engine(Protocol):
    """What the scheduled jobs need of the running engine (the Runtime)."""

    config: Config
    parts: Parts
    store: Store
    owner: str

    async def poll(self, source_name: str, only: list[str] | None = None) -> Any: ...

    async def fire_due(self, now: datetime | None = None) -> int: ...

    def retry_due(
        self, *, worker_id: str | None = None, target: str | None = None, everything: bool = False
    ) -> int: ...

    def wake(self) -> None: ...


class Served(Protocol):
    """What the HTTP server needs: `provisioner run`'s Runtime, or `provisioner serve`'s replica
    that has no pollers, no consumer and no broker."""

    config: Config
    parts: Parts
    store: Store

    async def poll(self, source_name: str, only: list[str] | None = None) -> Any: ...

    def wake(self) -> None: ...

    async def ready(self) -> dict[str, bool]: ...
