"""Build the parts a config describes: store, sources, targets, planner, applier."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.profile import Learner, TargetProfile
from provisioner.engine.contracts.protocols import LeaseBusy, SharesNames, Source, Target
from provisioner.engine.contracts.records import Link, LinkKey
from provisioner.engine.kit.process import new_owner
from provisioner.engine.runtime.apply import Applier
from provisioner.engine.runtime.usecases.safety_gate import SafetyGate
from provisioner.engine.runtime.usecases.writeback import Writebacks
from provisioner.engine.store import Store
from provisioner.rules.planner import Planner, TargetSpec
from provisioner.rules.policy import PolicySet
from provisioner.rules.safety import SafetyGuard
from provisioner.sources import build_source
from provisioner.targets import build_target, mapping_of

log = logging.getLogger("provisioner.engine")


class StoreNameClaims:
    """NameClaims (engine/contracts) kept in the store, so every engine process shares them."""

    def __init__(self, store: Store, owner: str, seconds: float = 30.0):
        self.store, self.owner, self.seconds = store, owner, seconds

    async def claim(self, target: str, kind: str, name: str) -> tuple[bool, str | None]:
        claims = self.store.claims
        return await asyncio.to_thread(claims.target_claim, target, kind, name, self.owner, self.seconds)

    async def settle(self, target: str, kind: str, name: str, remote_id: str | None) -> None:
        await asyncio.to_thread(self.store.claims.settle_target, target, kind, name, self.owner, remote_id)

    async def forget(self, target: str, kind: str, name: str, remote_id: str) -> None:
        await asyncio.to_thread(self.store.claims.forget_target, target, kind, name, remote_id)

    async def _lease(self, target: str, kind: str, name: str, seconds: float) -> bool:
        try:
            return await asyncio.to_thread(self.store.claims.lease, target, kind, name, self.owner, seconds)
        except Exception as exc:  # the store is away: a write it guards waits (transient), as events do
            # (the exception's type only: a driver's message may carry the store's address)
            raise LeaseBusy(
                f"the lease on {kind} {name!r} of target {target!r} could not be taken: {type(exc).__name__}"
            ) from exc

    @asynccontextmanager
    async def hold(self, target: str, kind: str, name: str, seconds: float) -> AsyncIterator[None]:
        # Waiting as long as a lease lasts outwaits a crashed holder; a live one that keeps the
        # thing busy that long makes this write fail transient (and be retried), never hang.
        deadline = time.monotonic() + seconds
        pause = 0.005
        while not await self._lease(target, kind, name, seconds):
            if time.monotonic() + pause > deadline:
                raise LeaseBusy(f"{kind} {name!r} of target {target!r} stayed held by another write for {seconds:g}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)
        try:
            yield
        finally:
            try:
                await asyncio.to_thread(self.store.claims.unlease, target, kind, name, self.owner)
            except Exception as exc:  # the write's own outcome stands; the lease lapses by itself
                log.warning("could not give back the lease on %s %r of %s: %s", kind, name, target, type(exc).__name__)


def compile_planner(config: Config) -> Planner:
    """The config's policies and target mappings, compiled: all a plan needs (no I/O)."""
    specs = [
        TargetSpec.compile(
            t.name,
            t.on_terminate.action,
            mapping_of(t),
            t.deprovision_out_of_scope,
            remove_groups=t.on_terminate.remove_groups,
            out_of_scope=(t.on_out_of_scope.action, t.on_out_of_scope.remove_groups) if t.on_out_of_scope else None,
        )
        for t in config.targets
    ]
    policies = PolicySet.compile(
        config.policies,
        [t.name for t in config.targets],
        config.lifecycle,
        {t.name: t.on_leave for t in config.targets},
        {t.name: t.approval for t in config.targets if t.approval is not None},
        config.approvals.requests.access,
    )
    return Planner(policies, specs)


class Parts:
    def __init__(self, config: Config, store: Store | None = None):
        self.config = config
        self.planner = compile_planner(config)
        self.policies = self.planner.policies
        self.safety = SafetyGuard(config.safety, self.planner)
        self.store = store or Store(config.store.url, config.retry)
        self.gate = SafetyGate(self.safety, self.store)  # what a poll, due work and provision-now pass
        self.sources: dict[str, Source] = {s.name: build_source(s.name, s.type, s.settings()) for s in config.sources}
        self.targets: dict[str, Target] = {t.name: build_target(t) for t in config.targets}
        names = StoreNameClaims(self.store, new_owner())
        for target in self.targets.values():
            if isinstance(target, SharesNames):  # groups of a name are created once across engines
                target.share_names(names)
        for name, target in self.targets.items():
            if isinstance(target, Learner):  # what any process learned about the app, this one starts from
                target.use_profile(self.store.profiles.get(name), self._keeper(name))
        self.applier = Applier(self.planner, self.targets)
        self.writebacks = Writebacks(config.writeback, self.sources, self.targets, self.planner.targets)

    def _keeper(self, target: str) -> Callable[[TargetProfile], None]:
        return partial(self.store.profiles.save, target)

    def known(self, events: list[WorkerEvent]) -> dict[LinkKey, Link]:
        """The links plans of these events read (their workers' and their managers'), in one read."""
        return self.store.links.for_workers(self.applier.links_needed(events))

    def approved(self, worker_ids: list[str]) -> dict[str, set[str]]:
        """Their approved grants (keys), read only when some grant waits for approval."""
        return self.store.approvals.approved_keys(worker_ids) if self.policies.gated else {}

    def account_of(self, worker_id: str, target: str) -> str | None:
        """One person's account id, read when asked: for commands that show a plan, not the pipeline."""
        link = self.store.links.for_workers([worker_id]).get((worker_id, target))
        return link.account_id if link is not None else None

    async def aclose(self) -> None:
        for source in self.sources.values():
            await source.aclose()
        for target in self.targets.values():
            await target.aclose()
        self.store.close()
