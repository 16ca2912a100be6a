"""What an engine does when the consumer group takes partitions away from it.

Before the new owner starts (the bus awaits this listener before the partitions move on) the engine
stops starting work for the lost partitions: their events not yet started are dropped (the new
owner applies them), those in flight get `engine.revoke_wait` to finish and be recorded, and the
offsets recorded meanwhile are committed while the partitions are still ours. Whatever is still
running after that goes on and is recorded when it finishes: its event claim, renewed meanwhile,
keeps the new owner from applying it a second time."""

from __future__ import annotations

import logging
import time

from provisioner.engine.runtime.fleet import Fleet
from provisioner.engine.runtime.ports import Partition
from provisioner.engine.store import store_error

log = logging.getLogger("provisioner.engine")


class Rebalance:
    """The bus's RebalanceListener (runtime/ports.py)."""

    def __init__(self, fleet: Fleet, wait: float):
        self.fleet = fleet
        self.wait = wait

    async def on_partitions_revoked(self, revoked: set[Partition]) -> None:
        if not revoked:
            return
        fleet, started = self.fleet, time.monotonic()
        fleet.vitals.rebalances += 1
        lost = fleet.offsets.revoke(revoked)
        fleet.pipeline.revoke(lost)
        running = await fleet.pipeline.settle(lost, self.wait)
        await fleet.offsets.commit()
        fleet.offsets.forget(revoked)
        try:
            dropped = len(await fleet.release_dropped())
        except Exception as exc:  # released at the next heartbeat; the new owner waits until then
            log.warning("could not release the claims of dropped events yet: %s", store_error(exc))
            dropped = 0
        fleet.vitals.paused_seconds += time.monotonic() - started
        log.info(
            "rebalance: %d partitions revoked; %d of their events left to the new owner, %d still running "
            "(recorded when they finish), the rest done (%.1fs)",
            len(revoked),
            dropped,
            len(running),
            time.monotonic() - started,
        )

    async def on_partitions_assigned(self, assigned: set[Partition]) -> None:
        self.fleet.offsets.revoking.clear()  # the group's new assignment is settled
        if assigned:
            names = sorted(f"{p.topic}:{p.partition}" for p in assigned)
            log.info("rebalance: %d partitions assigned (%s)", len(assigned), ", ".join(names))
