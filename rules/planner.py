"""From one worker change to Actions per target: desired state (policies + mapping) vs the link."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from provisioner.engine.contracts.approvals import ACCESS_LASTS
from provisioner.engine.contracts.events import (
    APPROVAL_SOURCE,
    RECONCILE_SOURCE,
    REFERENCE_SOURCE,
    RETRY_SOURCE,
    SCHEDULER_SOURCE,
    EventType,
    WorkerEvent,
)
from provisioner.engine.contracts.models import Action, ActionKind, Worker
from provisioner.engine.contracts.records import Link
from provisioner.engine.kit.templating import Template, TemplateError
from provisioner.rules.policy import Entitlement, GatedGrant, PolicyError, PolicySet
from provisioner.rules.requested import requested_endings, requested_lasts, with_requested

REFERENCE_SUFFIX = "manager.value"
AccountOf = Callable[[str, str], "str | None"]  # (worker id, target) → that worker's account id there


@dataclass(frozen=True)
class TargetSpec:
    """What the planner needs of a target: how to deprovision and how to map attributes."""

    name: str
    on_terminate: str
    mapping: dict[str, Template]
    deprovision_out_of_scope: bool = True
    remove_groups: bool = True  # a disabled leaver leaves the managed groups (the safe default)
    out_of_scope: tuple[str, bool] | None = None  # (action, remove_groups) on leaving scope; None: as on_terminate

    @classmethod
    def compile(
        cls,
        name: str,
        on_terminate: str,
        mapping: dict[str, str],
        deprovision_out_of_scope: bool = True,
        *,
        remove_groups: bool = True,
        out_of_scope: tuple[str, bool] | None = None,
    ) -> TargetSpec:
        try:
            templates = {path: Template(src) for path, src in mapping.items()}
            return cls(name, on_terminate, templates, deprovision_out_of_scope, remove_groups, out_of_scope)
        except TemplateError as exc:
            raise PolicyError(f"target {name!r} mapping: {exc}") from None

    def render(self, worker: Worker, now: datetime | None = None, accounts: AccountOf | None = None) -> dict[str, Any]:
        """The attributes this worker should have; empty results are left out.

        A path ending in `manager.value` holds a worker id (`{{ worker.manager_id }}`) and is written
        as that person's account id in this target; until they have one it is left out."""
        out = {}
        for path, template in self.mapping.items():
            value = self._value(path, template, worker, now)
            if value is not None and path.endswith(REFERENCE_SUFFIX):
                value = accounts(value, self.name) if accounts else None
            if value is not None:
                out[path] = value
        return out

    def references(self, worker: Worker, now: datetime | None = None) -> list[str]:
        """The worker ids this worker's attributes name (their manager): whose accounts `render`
        looks up, so a caller can load them before planning."""
        named = (self._value(p, t, worker, now) for p, t in self.mapping.items() if p.endswith(REFERENCE_SUFFIX))
        return [value for value in named if value is not None]

    def _value(self, path: str, template: Template, worker: Worker, now: datetime | None) -> str | None:
        try:
            return template.render(worker=worker, now=now)
        except TemplateError as exc:
            raise PolicyError(f"target {self.name!r} mapping {path!r} on {worker.id}: {exc}") from None


def cause(event: WorkerEvent) -> str:
    """The part of a reason that says what happened at the source."""
    if event.source == SCHEDULER_SOURCE:
        return "scheduled change due"
    if event.source == RETRY_SOURCE:
        return "retry after a failed write"
    if event.source == RECONCILE_SOURCE:
        return "reconcile: the app differed from the desired state"
    if event.source == REFERENCE_SOURCE:
        return "the manager's account now exists"
    if event.source == APPROVAL_SOURCE:
        return "a request that waited was approved"
    if event.type is EventType.updated and event.data.changed:
        shown = ", ".join(event.data.changed[:4]) + (" …" if len(event.data.changed) > 4 else "")
        return f"{shown} changed"
    return {
        EventType.hired: "new hire",
        EventType.updated: "record updated",
        EventType.terminated: "terminated",
        EventType.rehired: "rehired",
        EventType.removed: "removed from the source",
    }[event.type]


def attribute_diff(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """Only what changed; None means remove a value we set before."""
    diff = {k: v for k, v in desired.items() if current.get(k) != v}
    diff.update({k: None for k in current if k not in desired and current[k] is not None})
    return diff


class Planner:
    def __init__(self, policies: PolicySet, targets: list[TargetSpec]):
        self.policies = policies
        self.targets = {t.name: t for t in targets}

    def references(self, workers: Iterable[Worker], now: datetime) -> set[str]:
        """The worker ids whose accounts plans of these workers look up. A mapping that cannot be
        rendered names nobody here: planning reports it, for that worker alone."""
        named: set[str] = set()
        for worker in workers:
            for spec in self.targets.values():
                try:
                    named.update(spec.references(worker, now))
                except PolicyError:
                    continue
        return named

    def entitlements(
        self, worker: Worker | None, now: datetime, approved: Collection[str] = ()
    ) -> dict[str, Entitlement]:
        """The policies' entitlements, with the access approved requests give (rules/requested.py)."""
        return with_requested(self.policies, self.policies.entitlements(worker, now), approved, worker, now)

    def plan(
        self,
        event: WorkerEvent,
        links: dict[str, Link],
        now: datetime | None = None,
        accounts: AccountOf | None = None,
        approved: Collection[str] = (),
    ) -> list[Action]:
        """Actions for one event in the order they must run, noops left out; those with
        `effective_at` are due later and replace whatever was scheduled for this worker before.
        `approved`: the keys of this worker's approved grants (`grant_key`)."""
        return self.plan_gated(event, links, now or datetime.now(UTC), accounts, approved)[0]

    def plan_gated(
        self,
        event: WorkerEvent,
        links: dict[str, Link],
        now: datetime,
        accounts: AccountOf | None = None,
        approved: Collection[str] = (),
    ) -> tuple[list[Action], set[str]]:
        """The plan (`now` required), and the keys of the gated grants whose reason still holds: an
        approval of any other grant of this worker is void."""
        worker = event.data.worker
        entitlements = self.entitlements(worker, now, approved)
        why = cause(event) if entitlements else ""  # said in the actions' reasons: none without a target
        actions: list[Action] = []
        lasting: set[str] = set()
        for name, ent in entitlements.items():
            spec = self.targets[name]
            link = links.get(name)
            if ent.gated and ent.grant_lasts:
                lasting.update(g.key for g in ent.gated)
            if self.policies.access_requests and requested_lasts(ent):
                lasting.add(f"{ACCESS_LASTS}{name}")
            if ent.in_scope and worker is not None:
                allowed, waiting = _gate(worker.id, ent, link, approved)
                if allowed is not None:
                    actions += self._provision(worker, spec, allowed, link, why, now, accounts)
                elif link is not None and (gone := [g for g in link.groups if g not in ent.groups]):
                    # The (disabled) account waits; groups no policy grants any more do not.
                    reason, kind = f"{ent.why}; groups no longer granted: {', '.join(gone)}", ActionKind.remove_groups
                    actions.append(Action(worker_id=worker.id, target=name, action=kind, groups=gone, reason=reason))
                actions += waiting
                actions += requested_endings(worker.id, ent, approved, now, spec.on_terminate)
            elif link is not None:
                actions += self._deprovision(event.subject, spec, ent, link, why)
            if ent.starts_at is not None and worker is not None:
                kind = ActionKind.create if link is None else ActionKind.enable
                actions.append(
                    Action(
                        worker_id=worker.id,
                        target=name,
                        action=kind,
                        effective_at=ent.starts_at,
                        policy=ent.policies[0] if ent.policies else None,
                        reason=f"pre-hire window opens ({ent.why})",
                    )
                )
        return actions, lasting

    def _provision(
        self,
        worker: Worker,
        spec: TargetSpec,
        ent: Entitlement,
        link: Link | None,
        why: str,
        now: datetime,
        accounts: AccountOf | None,
    ) -> list[Action]:
        policy = ent.policies[0]

        def act(kind: ActionKind, reason: str, **kw: Any) -> Action:
            return Action(
                worker_id=worker.id, target=spec.name, action=kind, policy=policy, reason=f"{ent.why}; {reason}", **kw
            )

        desired = spec.render(worker, now, accounts)
        out = []
        if link is None:
            attributes = desired if ent.enabled else {**desired, "active": False}
            out.append(act(ActionKind.create, why, attributes=attributes))
            if ent.groups:
                out.append(act(ActionKind.add_groups, f"groups granted: {', '.join(ent.groups)}", groups=ent.groups))
        else:
            # Revocation first: access that should go never waits behind a write the app may refuse.
            remove = [g for g in link.groups if g not in ent.groups]
            if remove:
                # `why` names the cause: a move at the source, or reconcile finding a membership by hand
                out.append(
                    act(
                        ActionKind.remove_groups,
                        f"groups no longer granted: {', '.join(remove)}, after: {why}",
                        groups=remove,
                    )
                )
            if ent.enabled and not link.active:
                out.append(act(ActionKind.enable, why))
            elif not ent.enabled and link.active:
                out.append(act(ActionKind.disable, "pre-hire accounts stay disabled until the start date"))
            diff = attribute_diff(link.attributes, desired)
            if diff:
                out.append(act(ActionKind.update, f"{', '.join(sorted(diff))} to update after: {why}", attributes=diff))
            add = [g for g in ent.groups if g not in link.groups]
            if add:
                out.append(act(ActionKind.add_groups, f"groups granted: {', '.join(add)}, after: {why}", groups=add))
        if ent.enable_at is not None and not ent.enabled:
            out.append(act(ActionKind.enable, "start date reached", effective_at=ent.enable_at))
        if ent.ends_at is not None:
            kind = ActionKind.delete if spec.on_terminate == "delete" else ActionKind.disable
            out.append(act(kind, "access ends (termination)", effective_at=ent.ends_at))
        return out

    @staticmethod
    def _deprovision(worker_id: str, spec: TargetSpec, ent: Entitlement, link: Link, why: str) -> list[Action]:
        if not ent.by_status and not spec.deprovision_out_of_scope:
            return []  # like Entra's "skip out-of-scope deletions": only status changes deprovision
        reason = f"out of scope ({ent.why}); {why}"
        kind, remove = (
            (spec.on_terminate, spec.remove_groups) if ent.by_status or spec.out_of_scope is None else spec.out_of_scope
        )
        if kind == "delete" and not ent.leave:
            return [Action(worker_id=worker_id, target=spec.name, action=ActionKind.delete, reason=reason)]
        out = []
        if link.active:
            out.append(Action(worker_id=worker_id, target=spec.name, action=ActionKind.disable, reason=reason))
        # Someone on leave comes back to the same access; a leaver's disabled account keeps no group
        # unless the target says remove_groups: false.
        if remove and link.groups and not ent.leave:
            out.append(
                Action(
                    worker_id=worker_id,
                    target=spec.name,
                    action=ActionKind.remove_groups,
                    reason=f"{reason}; groups removed with the account (remove_groups)",
                    groups=list(link.groups),
                )
            )
        return out


def allowed_now(ent: Entitlement, link: Link | None, approved: Collection[str]) -> Entitlement | None:
    """What of an in-scope entitlement may exist now, grants waiting for approval left out (None:
    no account yet): the desired state the reconciler compares an app with."""
    return _gate("", ent, link, approved)[0]


def _gate(
    worker_id: str, ent: Entitlement, link: Link | None, approved: Collection[str]
) -> tuple[Entitlement | None, list[Action]]:
    """What of an in-scope entitlement may be written now, and a pending_approval action per grant
    that waits. Groups an active account already holds never wait (nor are they removed for
    waiting); the account waits only when no other grant gives it. None: nothing may be written yet."""
    if not ent.gated:
        return ent, []
    held = set(link.groups) if link is not None and link.active else set()
    waits = [g for g in ent.gated if g.key not in approved]
    if not waits:
        return ent, []
    given = {g for grant in ent.gated if grant.key in approved for g in grant.groups}
    open_groups = {g for g in ent.groups if not any(g in w.groups for w in waits)}
    allowed_groups = [g for g in ent.groups if g in open_groups or g in given or g in held]
    # A disabled account (a leaver's, kept) is not given: a rehire asks again before it is enabled.
    account_given = (link is not None and link.active) or bool(ent.open_policies) or len(waits) < len(ent.gated)
    pending = [
        _pending(worker_id, grant, ent, account=not account_given, held=held)
        for grant in waits
        if not account_given or not set(grant.groups) <= held
    ]
    if not account_given:
        return None, pending
    return replace(ent, groups=allowed_groups), pending


def _pending(worker_id: str, grant: GatedGrant, ent: Entitlement, *, account: bool, held: set[str]) -> Action:
    rule = grant.rule
    return Action(
        worker_id=worker_id,
        target=grant.target,
        action=ActionKind.pending_approval,
        groups=[g for g in grant.groups if g not in held],
        policy=grant.policy,
        attributes={
            "key": grant.key,
            "account": account,
            "by": rule.describe,
            "expires_after": rule.expires_after,
            "reason_required": rule.reason_required,
        },
        reason=f"{ent.why}; waits for approval by {rule.describe}",
    )
