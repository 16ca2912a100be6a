"""The outbox relay: rows the store committed become records on the bus, in order, per worker.

One person's events share a key (the worker id) and so a partition, in outbox order. With several
engine processes one of them relays, under a lease it renews as it goes; the process that takes the
lease over re-publishes what was published but never confirmed and that no live consumer has
claimed: after a crash that is exactly what would otherwise be lost, and what a live consumer is
applying is not sent a second time.

Rows are published as the bytes the poll wrote, never decoded, through the bus's publisher
(runtime/ports.py), which returns once the bus has acknowledged every record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from provisioner.engine.runtime.fleet import Vitals
from provisioner.engine.runtime.ports import Publisher
from provisioner.engine.store import Store, store_error

log = logging.getLogger("provisioner.engine")

LEASE_S = 15.0
ROWS_PER_TURN = 2000


class Relay:
    def __init__(self, store: Store, publisher: Publisher, owner: str, wake: asyncio.Event, vitals: Vitals):
        self.store = store
        self.publisher = publisher
        self.owner = owner
        self.wake = wake  # set when the outbox has new rows: look now rather than at the next tick
        self.vitals = vitals
        self._renewed = 0.0  # time.monotonic() of the last lease taken or renewed

    async def run(self, stopping: Callable[[], bool]) -> None:
        leading = False
        while not stopping():
            try:
                leading = await self.turn(leading)
            except Exception as exc:  # the store or the broker failed this turn: the rows wait for the next
                log.warning("outbox relay: %s; trying again in a second", store_error(exc))
                await asyncio.sleep(1.0)

    async def turn(self, leading: bool) -> bool:
        """One turn; returns whether this process leads (holds the relay lease)."""
        store = self.store
        # Renewed a third into its term, not every turn: a lease taken at t holds until t + LEASE_S,
        # and a write per turn would queue behind a poll's long write transaction on SQLite.
        if not (leading and time.monotonic() - self._renewed < LEASE_S / 3):
            self.vitals.leading = await asyncio.to_thread(
                store.schedule.acquire_lease, "relay", self.owner, LEASE_S, record=False
            )
            self._renewed = time.monotonic()
        if not self.vitals.leading:
            await asyncio.sleep(LEASE_S / 3)
            return False
        # A new leader: what was published and never confirmed may have died with a consumer; what
        # a live consumer has claimed is on its way and is left alone (sent again, oldest first).
        if not leading and (requeued := await asyncio.to_thread(store.outbox.requeue_unconfirmed)):
            self.vitals.republished += requeued
            log.info("re-publishing %d events that were never confirmed as applied nor claimed", requeued)
        self.wake.clear()  # before the read: a poll committing during it wakes the next wait
        rows = await asyncio.to_thread(store.outbox.unpublished, ROWS_PER_TURN)
        if not rows:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)
            return True
        await self.publisher.publish([(row.worker_id.encode(), row.payload.encode()) for row in rows])
        await asyncio.to_thread(store.outbox.mark_published, [r.seq for r in rows])
        return True

    async def aclose(self) -> None:
        """Close the publisher (what it still sends is sent), then hand the lease over at once: a
        clean stop. Another engine taking it over earlier could publish beside our last sends."""
        await self.publisher.aclose()
        with contextlib.suppress(Exception):  # an unreachable store: the lease then runs out by itself
            await asyncio.to_thread(self.store.schedule.release_lease, "relay", self.owner)
