"""Apply one WorkerEvent: plan it once, from links loaded for its batch, and run its Actions through
the writers. The pipeline schedules events (one worker's in order); the Apply use case records them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.models import Action, ActionKind, Outcome, Result, ResultStatus, Worker
from provisioner.engine.contracts.ports import Clock, system_clock
from provisioner.engine.contracts.protocols import Target
from provisioner.engine.contracts.records import ANY_TARGET, EventOutcome, Link, LinkKey, LogEntry, utcnow
from provisioner.engine.kit.http import is_transient
from provisioner.engine.runtime.batch import BatchReport as BatchReport  # where the pipeline finds it
from provisioner.engine.runtime.priming import Primer
from provisioner.reconcile.classify import same_value
from provisioner.rules.planner import Planner, attribute_diff

log = logging.getLogger("provisioner.apply")

# Links by (worker, target) as a plan may see them: as loaded for the batch, or as events applied
# since left them (None: unlinked).
Known = Mapping[LinkKey, Link | None]


def failed_event(
    ev: WorkerEvent, step: str, reason: str, error: str, *, summary: str | None = None, transient: bool = False
) -> EventOutcome:
    """The outcome of an event that failed as a whole, before any target was written: no target is
    settled, and one log entry says which step failed and why (`summary`: the shorter text the
    retry state keeps, when it differs from the log's)."""
    outcome = EventOutcome(ev.id, ev)
    outcome.fail(ANY_TARGET, step, summary or error, transient)
    outcome.log.append(
        LogEntry(event_id=ev.id, worker_id=ev.subject, action=step, result="failure", reason=reason, error=error)
    )
    return outcome


class Planned(NamedTuple):
    """One event's plan: its outcome so far, the actions due now (none: the outcome is complete), and
    the worker's links by target those actions start from."""

    outcome: EventOutcome
    actions: list[Action]
    links: dict[str, Link]


class Applier:
    """Plans one event from links loaded before (no I/O) and runs its actions through the writers;
    scheduling lives in the pipeline, recording in the Apply use case."""

    def __init__(self, planner: Planner, targets: dict[str, Target], clock: Clock = system_clock):
        self.planner = planner
        self.targets = targets
        self.clock = clock  # what "now" is for lifecycle dates; tests move it
        self.primer = Primer()  # a slow target's listing delays only its own lookups

    def links_needed(self, events: list[WorkerEvent]) -> set[str]:
        """The workers whose links plans of these events read: their own, and those of the people
        their attributes name (a manager, whose account id is written), loaded before planning."""
        workers = [ev.data.worker for ev in events if ev.data.worker is not None]
        return {ev.subject for ev in events} | self.planner.references(workers, self.clock())

    async def prime(self, events: list[WorkerEvent], links: Known) -> None:
        """Tell each writer how many lookups are coming, so it can list once instead of querying each."""
        if not events:  # (a batch whose every plan wrote nothing)
            return
        workers = {ev.subject for ev in events if ev.data.worker}
        expected = {name: sum(1 for wid in workers if (wid, name) not in links) for name in self.targets}
        await self.primer.prime(self.targets, expected)

    def plan_event(self, ev: WorkerEvent, known: Known, approved: Collection[str] = ()) -> Planned:
        """Plan one event from `known`, links by (worker, target) as loaded (`links_needed`) and moved
        since (None: unlinked), and `approved`, the keys of the worker's approved grants; no I/O.
        What is due now is for `apply_event`; grants waiting for approval are for the recorder. A
        plan that cannot be evaluated comes back as a failed outcome with nothing to run."""
        outcome = EventOutcome(ev.id, ev)
        now = self.clock()
        links = {name: link for name in self.targets if (link := known.get((ev.subject, name))) is not None}
        unresolved: list[tuple[str, str]] = []

        def account_of(worker_id: str, target: str) -> str | None:
            link = known.get((worker_id, target))
            if link is None:
                unresolved.append((target, worker_id))
                return None
            return link.account_id

        try:
            planned, outcome.lasting = self.planner.plan_gated(ev, links, now, account_of, approved)
        except ValueError as exc:  # a person must fix the policies
            return Planned(failed_event(ev, "plan", "the policies could not be evaluated", str(exc)), [], links)
        outcome.unresolved = unresolved
        outcome.requests = [a for a in planned if a.action is ActionKind.pending_approval]
        planned = [a for a in planned if a.action is not ActionKind.pending_approval]
        outcome.deferred = [a for a in planned if a.effective_at is not None and a.effective_at > now]
        due = [a for a in planned if a.effective_at is None or a.effective_at <= now]
        if not due:
            outcome.settled = [ANY_TARGET, *self.targets]
        return Planned(outcome, due, links)

    async def apply_event(self, planned: Planned) -> EventOutcome:
        """Run a planned event's actions in order and say what they did."""
        outcome, actions, links = planned
        if not actions:
            return outcome
        assert outcome.event is not None
        ev = outcome.event
        links = dict(links)
        failed: dict[str, list[tuple[Action, Result]]] = {}
        for action in _one_group_each(actions):
            # Each action on an existing account stands alone: a refused attribute never holds back
            # the removal of access (nor a grant), nor one group the others. Only a missing account
            # (a failed create) stops them.
            if action.target in failed and action.target not in links:
                outcome.log.append(
                    self._entry(
                        ev, action, Result(status=ResultStatus.skipped, error="an earlier action on this target failed")
                    )
                )
                continue
            result = await self._run(ev.data.worker, action, links.get(action.target))
            outcome.log.append(self._entry(ev, action, result))
            if not result.ok:
                failed.setdefault(action.target, []).append((action, result))
                continue
            link = self._relink(ev.subject, action, result, links.get(action.target))
            if link is None:
                links.pop(action.target, None)
                outcome.unlinked.append((ev.subject, action.target))
            else:
                links[action.target] = link
                outcome.links.append(link)
        for name, failures in failed.items():
            _fail(outcome, name, failures)
        outcome.settled = [ANY_TARGET, *(name for name in self.targets if name not in failed)]
        return outcome

    async def _run(self, worker: Worker | None, action: Action, link: Link | None) -> Result:
        try:
            return await self._run_action(worker, action, link)
        except Exception as exc:  # a writer that raised instead of answering: the action failed, say why
            log.warning(
                "target %s raised on %s for %s: %s",
                action.target,
                action.action.value,
                action.worker_id,
                exc,
                extra={"target": action.target, "worker_id": action.worker_id},
            )
            error = f"{type(exc).__name__}: {exc}"
            return Result(status=ResultStatus.failure, error=error, transient=is_transient(exc))

    async def _run_action(self, worker: Worker | None, action: Action, link: Link | None) -> Result:
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
            if result.outcome is not Outcome.conflict:
                return result
            # Someone created it between our lookup and our create: find it and adopt it.
            account = await target.lookup(worker, None, attributes)
            if account is None:
                return Result(
                    status=ResultStatus.failure,
                    error="the target reports a conflict but no account matches this worker's externalId or userName",
                )
        diff = attribute_diff(account.attributes, attributes)
        # Never blank what another system set, nor rewrite a userName that differs only in case.
        diff = {k: v for k, v in diff.items() if v is not None and not same_value(k, account.attributes.get(k), v)}
        result = (
            await target.update(account.id, diff, account.attributes) if diff else Result(status=ResultStatus.success)
        )
        if result.ok and not account.active and attributes.get("active", True) is not False:
            result = await target.enable(account.id)
        return Result(
            status=result.status,
            account_id=account.id,
            attributes=diff,
            error=result.error,
            duration_ms=result.duration_ms,
            adopted=True,
        )

    @staticmethod
    def _relink(worker_id: str, action: Action, result: Result, link: Link | None) -> Link | None:
        kind = action.action
        if kind is ActionKind.delete:
            return None
        if kind is ActionKind.create:
            attributes = {k: v for k, v in action.attributes.items() if k != "active"}
            active = action.attributes.get("active", True) is not False
            return _link(worker_id, action.target, result.account_id or "", active, attributes, [])
        assert link is not None
        active, attributes, groups = link.active, dict(link.attributes), list(link.groups)
        if kind is ActionKind.update:
            for key, value in action.attributes.items():
                if value is None:
                    attributes.pop(key, None)
                else:
                    attributes[key] = value
        elif kind in (ActionKind.enable, ActionKind.disable):
            active = kind is ActionKind.enable
        elif kind is ActionKind.add_groups:
            groups += [g for g in action.groups if g not in groups]
        elif kind is ActionKind.remove_groups:
            groups = [g for g in groups if g not in action.groups]
        return _link(link.worker_id, link.target, link.account_id, active, attributes, groups)

    @staticmethod
    def _entry(ev: WorkerEvent, action: Action, result: Result) -> LogEntry:
        name = "adopt" if result.adopted else action.action.value
        return LogEntry.model_construct(
            event_id=ev.id,
            worker_id=action.worker_id,
            target=action.target,
            action=name,
            policy=action.policy,
            reason=action.reason,
            attributes=result.attributes or action.attributes or ({"groups": action.groups} if action.groups else {}),
            result=result.status.value,
            error=result.error,
            duration_ms=result.duration_ms,
        )


def _fail(outcome: EventOutcome, target: str, failures: list[tuple[Action, Result]]) -> None:
    """One failure per worker × target, named after its first failed action (a revocation, when one
    failed: they run first); it is retried only when every failed action there may succeed later."""
    first = failures[0][0].action.value
    if len(failures) == 1:
        error = _naming_group(*failures[0])
    else:
        error = "; ".join(f"{a.action.value}: {_naming_group(a, r)}" for a, r in failures)
    outcome.fail(target, first, error, all(r.transient for _, r in failures))


def _naming_group(action: Action, result: Result) -> str:
    """The error, with the group it was about when the app's own words do not say (a bare 403)."""
    error = result.error or "failed"
    group = action.groups[0] if len(action.groups) == 1 else None
    return f"group {group!r}: {error}" if group is not None and repr(group) not in error else error


def _one_group_each(actions: list[Action]) -> list[Action]:
    """A group action per group: each is confirmed, recorded in the link and failed on its own, so a
    group the app refuses never holds back the others (a leaver still leaves the admin group after
    a refused all-staff), and a group that was added is in the link even when another was refused
    (its removal is planned when the person leaves)."""
    each: list[Action] = []
    for action in actions:
        if action.action in (ActionKind.add_groups, ActionKind.remove_groups) and len(action.groups) > 1:
            each += [action.model_copy(update={"groups": [group]}) for group in action.groups]
        else:
            each.append(action)
    return each


def _link(
    worker_id: str, target: str, account_id: str, active: bool, attributes: dict[str, Any], groups: list[str]
) -> Link:
    # model_construct: a value for a core INSERT; a full ORM object costs five times more to build
    return Link.model_construct(
        worker_id=worker_id,
        target=target,
        account_id=account_id,
        active=active,
        attributes=attributes,
        groups=groups,
        updated_at=utcnow(),
    )
