"""Webhook notices become fetches: notices for one source coalesce into one fetch at a time,
and at most `cap` sources fetch at once, so a flood of (even valid) notices costs a bounded
number of vendor calls and never starves the scheduled polls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("provisioner.webhooks")

Fetch = Callable[[str, list[str]], Awaitable[Any]]
MAX_PENDING = 10000  # ids waiting per source; past this the next scheduled poll covers the rest


class Notices:
    def __init__(self, fetch: Fetch, cap: int = 4):
        self._fetch = fetch
        self._slots = asyncio.Semaphore(cap)
        self._pending: dict[str, set[str]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}

    def add(self, source: str, ids: list[str]) -> None:
        pending = self._pending.setdefault(source, set())
        room = MAX_PENDING - len(pending)
        if room < len(ids):
            log.warning("webhook for %s: %d notices waiting; the next poll covers the rest", source, len(pending))
        pending.update(ids[: max(0, room)])
        if source not in self._running:
            task = asyncio.create_task(self._drain(source))
            self._running[source] = task

    async def _drain(self, source: str) -> None:
        try:
            while ids := self._pending.pop(source, None):
                async with self._slots:
                    await self._fetch(source, sorted(ids))
        finally:
            del self._running[source]

    async def settled(self) -> None:
        """Wait until every fetch asked for so far has ended (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
