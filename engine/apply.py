"""Apply a batch of WorkerEvents: plan each, run its Actions through the writers, record the outcome.

Different workers run concurrently (bounded); one worker's events and actions stay in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.events import WorkerEvent
from engine.models import Action, ActionKind, Result, ResultStatus, Worker
from engine.protocols import Target
from engine.store import EventOutcome, Link, LogEntry, Store, utcnow
from rules.planner import Planner, attribute_diff

log = logging.getLogger("provisioner.apply")


@dataclass
class BatchReport:
    applied: int = 0
    skipped: int = 0
    failed: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[WorkerEvent, str]] = field(default_factory=list)


class Applier:
    def __init__(self, store: Store, planner: Planner, targets: dict[str, Target], concurrency: int = 8):
        self.store = store
        self.planner = planner
        self.targets = targets
        self.concurrency = concurrency

    async def apply(self, events: list[WorkerEvent]) -> BatchReport:
        report = BatchReport()
        done = self.store.processed([e.id for e in events])
        fresh: dict[str, WorkerEvent] = {}
        for ev in events:
            if ev.id in done or ev.id in fresh:
                report.skipped += 1  # already applied: exactly-once effect
            else:
                fresh[ev.id] = ev
        if not fresh:
            return report
        links = self.store.links_for({e.subject for e in fresh.values()})
        by_worker: dict[str, list[WorkerEvent]] = {}
        for ev in fresh.values():
            by_worker.setdefault(ev.subject, []).append(ev)
        await self._prime(by_worker, links)
        semaphore = asyncio.Semaphore(self.concurrency)
        outcomes: list[EventOutcome] = []

        async def run_worker(worker_events: list[WorkerEvent]) -> None:
            async with semaphore:
                for ev in worker_events:
                    outcome = await self._apply_event(ev, links)
                    outcomes.append(outcome)
                    if outcome.failed:
                        report.failures.append((ev, "; ".join(
                            f"{e.target or 'plan'}: {e.error}" for e in outcome.log if e.result == "failure")))
                    for entry in outcome.log:
                        report.actions[f"{entry.action}:{entry.result}"] += 1

        await asyncio.gather(*(run_worker(evs) for evs in by_worker.values()))
        self.store.record_outcomes(outcomes)
        report.applied = sum(not o.failed for o in outcomes)
        report.failed = sum(o.failed for o in outcomes)
        return report

    async def _prime(self, by_worker: dict[str, list[WorkerEvent]], links: dict[tuple[str, str], Link]) -> None:
        """Tell each writer how many lookups are coming, so it can list once instead of querying each."""
        for name, target in self.targets.items():
            unlinked = sum(1 for wid, evs in by_worker.items() if (wid, name) not in links and evs[-1].data.worker)
            try:
                await target.prime(unlinked)
            except Exception as exc:  # priming is an optimisation; lookups still work one by one
                log.warning("target %s: could not list accounts ahead of the batch: %s", name, exc)

    async def _apply_event(self, ev: WorkerEvent, links: dict[tuple[str, str], Link]) -> EventOutcome:
        outcome = EventOutcome(ev.id)
        worker_links = {t: link for (wid, t), link in links.items() if wid == ev.subject}
        try:
            actions = self.planner.plan(ev, worker_links)
        except ValueError as exc:
            outcome.failed = True
            outcome.log.append(LogEntry(event_id=ev.id, worker_id=ev.subject, action="plan", result="failure",
                                        reason="the policies could not be evaluated", error=str(exc)))
            return outcome
        failed_targets: set[str] = set()
        for action in actions:
            if action.target in failed_targets:
                outcome.log.append(self._entry(ev, action, Result(status=ResultStatus.skipped,
                                                                  error="an earlier action on this target failed")))
                continue
            result = await self._run(ev.data.worker, action, worker_links.get(action.target))
            outcome.log.append(self._entry(ev, action, result))
            if not result.ok:
                failed_targets.add(action.target)
                outcome.failed = True
                continue
            link = self._relink(ev.subject, action, result, worker_links.get(action.target))
            if link is None:
                worker_links.pop(action.target, None)
                links.pop((ev.subject, action.target), None)
                outcome.unlinked.append((ev.subject, action.target))
            else:
                worker_links[action.target] = links[(ev.subject, action.target)] = link
                outcome.links.append(link)
        return outcome

    async def _run(self, worker: Worker | None, action: Action, link: Link | None) -> Result:
        target = self.targets[action.target]
        kind = action.action
        if kind is ActionKind.create:
            assert worker is not None
            return await self._create_or_adopt(target, worker, action.attributes)
        assert link is not None, f"{kind} needs a linked account"
        if kind is ActionKind.update:
            return await target.update(link.account_id, action.attributes, link.attributes)
        if kind is ActionKind.enable:
            return await target.enable(link.account_id)
        if kind is ActionKind.disable:
            return await target.disable(link.account_id)
        if kind is ActionKind.delete:
            return await target.delete(link.account_id)
        if kind is ActionKind.add_groups:
            return await target.set_groups(link.account_id, action.groups, [])
        if kind is ActionKind.remove_groups:
            return await target.set_groups(link.account_id, [], action.groups)
        return Result(status=ResultStatus.skipped)

    @staticmethod
    async def _create_or_adopt(target: Target, worker: Worker, attributes: dict[str, Any]) -> Result:
        """Adopt an account the target already has for this person; create only when there is none."""
        account = await target.lookup(worker, None, attributes)
        if account is None:
            result = await target.create(worker, attributes)
            if result.error != "conflict":
                return result
            # Someone created it between our lookup and our create: find it and adopt it.
            account = await target.lookup(worker, None, attributes)
            if account is None:
                return Result(status=ResultStatus.failure, error="the target reports a conflict "
                              "but no account matches this worker's externalId or userName")
        diff = attribute_diff(account.attributes, attributes)
        diff = {k: v for k, v in diff.items() if v is not None}  # never blank what another system set
        result = (await target.update(account.id, diff, account.attributes) if diff
                  else Result(status=ResultStatus.success))
        if result.ok and not account.active:
            result = await target.enable(account.id)
        return Result(status=result.status, account_id=account.id, attributes=diff, error=result.error,
                      duration_ms=result.duration_ms, adopted=True)

    @staticmethod
    def _relink(worker_id: str, action: Action, result: Result, link: Link | None) -> Link | None:
        kind = action.action
        if kind is ActionKind.delete:
            return None
        if kind is ActionKind.create:
            return Link(worker_id=worker_id, target=action.target, account_id=result.account_id or "",
                        active=True, attributes=dict(action.attributes), groups=[], updated_at=utcnow())
        assert link is not None
        new = Link(worker_id=link.worker_id, target=link.target, account_id=link.account_id, active=link.active,
                   attributes=dict(link.attributes), groups=list(link.groups), updated_at=utcnow())
        if kind is ActionKind.update:
            for key, value in action.attributes.items():
                if value is None:
                    new.attributes.pop(key, None)
                else:
                    new.attributes[key] = value
        elif kind in (ActionKind.enable, ActionKind.disable):
            new.active = kind is ActionKind.enable
        elif kind is ActionKind.add_groups:
            new.groups += [g for g in action.groups if g not in new.groups]
        elif kind is ActionKind.remove_groups:
            new.groups = [g for g in new.groups if g not in action.groups]
        return new

    @staticmethod
    def _entry(ev: WorkerEvent, action: Action, result: Result) -> LogEntry:
        name = "adopt" if result.adopted else action.action.value
        return LogEntry(event_id=ev.id, worker_id=action.worker_id, target=action.target, action=name,
                        policy=action.policy, reason=action.reason,
                        attributes=result.attributes or action.attributes or ({"groups": action.groups}
                                                                              if action.groups else {}),
                        result=result.status.value, error=result.error, duration_ms=result.duration_ms)
