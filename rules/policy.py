"""Compiled policies and lifecycle: who should have which account, in which state, from when to when.

Every condition and template is compiled once at load. `PolicySet.entitlements` is the whole rule
book in one function: scope by policy (deny beats grant), then by status and dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from provisioner.engine.config import ApprovalRule, LifecycleConfig, PolicyConfig
from provisioner.engine.contracts.approvals import grant_key
from provisioner.engine.contracts.models import Worker, WorkerStatus
from provisioner.engine.kit.templating import Condition, Template, TemplateError


class PolicyError(ValueError):
    """A policy that does not compile or evaluate; the message names the policy."""


@dataclass(frozen=True)
class CompiledGrant:
    target: str
    groups: tuple[Template, ...]
    approval: ApprovalRule | None = None  # the grant's own; else the target's applies


@dataclass(frozen=True)
class CompiledPolicy:
    name: str
    condition: Condition
    grants: tuple[CompiledGrant, ...]
    deny: tuple[str, ...] = ()

    @classmethod
    def compile(cls, config: PolicyConfig) -> CompiledPolicy:
        try:
            return cls(
                name=config.name,
                condition=Condition(config.when),
                grants=tuple(
                    CompiledGrant(g.target, tuple(Template(t) for t in g.groups), g.approval) for g in config.grant
                ),
                deny=tuple(config.deny),
            )
        except TemplateError as exc:
            raise PolicyError(f"policy {config.name!r}: {exc}") from None


@dataclass(frozen=True)
class GatedGrant:
    """A grant that matched and waits for approval (its groups rendered for this person)."""

    policy: str
    target: str
    groups: tuple[str, ...]
    rule: ApprovalRule

    @property
    def key(self) -> str:
        return grant_key(self.policy, self.target, list(self.groups))


@dataclass
class Entitlement:
    """What one worker should have in one target, now and later."""

    target: str
    in_scope: bool = False
    policies: list[str] = field(default_factory=list)
    denied_by: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    why: str = ""
    enabled: bool = True  # False: the account exists but stays disabled (pre-hire)
    by_status: bool = False  # out of scope because of status/dates, not because of policies
    leave: bool = False  # out of scope only because the worker is on leave
    starts_at: datetime | None = None  # comes into scope then (pre-hire window opens)
    enable_at: datetime | None = None  # a disabled pre-hire account is enabled then
    ends_at: datetime | None = None  # leaves scope then (end-of-day termination, grace period)
    open_policies: list[str] = field(default_factory=list)  # policies granting here without approval
    gated: list[GatedGrant] = field(default_factory=list)  # grants here that wait for approval

    @property
    def grant_lasts(self) -> bool:
        """The reason for a gated grant still holds (in scope, on leave, or before the start date):
        an approval given for it stays good; otherwise it is void."""
        return self.in_scope or self.leave or self.starts_at is not None


@dataclass(frozen=True)
class Window:
    """The status and dates part of scope, the same for every target but for on_leave."""

    in_scope: bool
    why: str
    enabled: bool = True
    on_leave: bool = False
    starts_at: datetime | None = None
    enable_at: datetime | None = None
    ends_at: datetime | None = None


def _zone(worker: Worker) -> ZoneInfo:
    return ZoneInfo(worker.timezone or "UTC")


def _start_of(day: date, worker: Worker) -> datetime:
    return datetime.combine(day, time.min, tzinfo=_zone(worker))


class Lifecycle:
    def __init__(self, config: LifecycleConfig | None = None):
        self.config = config or LifecycleConfig()

    def deprovision_at(self, worker: Worker) -> datetime | None:
        """When access ends for a worker with a termination date (None: no date known)."""
        if worker.termination_date is None:
            return None
        day = worker.termination_date
        if self.config.terminate_at == "end_of_day":
            day += timedelta(days=1)  # midnight after the last day, in the worker's zone
        return _start_of(day, worker) + timedelta(days=self.config.grace_days)

    def window(self, worker: Worker, now: datetime) -> Window:
        status = worker.status
        ends = self.deprovision_at(worker)
        if status is WorkerStatus.terminated:
            if ends is None and self.config.grace_days:
                ends = (worker.updated_at or now) + timedelta(days=self.config.grace_days)
            if ends is not None and ends > now:
                return Window(True, f"terminated; access ends {ends.isoformat()}", ends_at=ends)
            return Window(False, "status is terminated")
        if ends is not None and ends <= now:
            return Window(False, f"termination date {worker.termination_date} has passed")
        if status is WorkerStatus.pending and worker.start_date is not None:
            start = _start_of(worker.start_date, worker)
            opens = start - timedelta(days=self.config.prehire_days)
            if now < opens:
                return Window(
                    False,
                    f"pre-hire: starts {worker.start_date}, provisioned from {opens.date()}",
                    starts_at=opens,
                    enable_at=start if self.config.prehire_state == "disabled" else None,
                    ends_at=ends,
                )
            if now < start and self.config.prehire_state == "disabled":
                return Window(
                    True,
                    f"pre-hire: account disabled until {worker.start_date}",
                    enabled=False,
                    enable_at=start,
                    ends_at=ends,
                )
        why = {WorkerStatus.on_leave: "on leave", WorkerStatus.pending: "pre-hire"}.get(status, "")
        if ends is not None:
            why = f"{why + '; ' if why else ''}access ends {ends.isoformat()}"
        return Window(True, why, on_leave=status is WorkerStatus.on_leave, ends_at=ends)


class PolicySet:
    def __init__(
        self,
        policies: list[CompiledPolicy],
        targets: list[str],
        lifecycle: Lifecycle | None = None,
        on_leave: dict[str, str] | None = None,
        approvals: dict[str, ApprovalRule] | None = None,
        access_requests: bool = False,
    ):
        self.policies = policies
        self.targets = targets
        self.lifecycle = lifecycle or Lifecycle()
        self.on_leave = on_leave or {}
        self.approvals = approvals or {}  # per target: every grant there waits for approval
        self.access_requests = access_requests  # an approved request may give access no policy gives

    @property
    def gated(self) -> bool:
        """Whether any grant waits for approval or may come from an approved access request (else
        no approval is ever read or recorded)."""
        return self.access_requests or bool(self.approvals) or any(g.approval for p in self.policies for g in p.grants)

    @classmethod
    def compile(
        cls,
        configs: list[PolicyConfig],
        targets: list[str],
        lifecycle: LifecycleConfig | None = None,
        on_leave: dict[str, str] | None = None,
        approvals: dict[str, ApprovalRule] | None = None,
        access_requests: bool = False,
    ) -> PolicySet:
        compiled = [CompiledPolicy.compile(c) for c in configs]
        return cls(compiled, targets, Lifecycle(lifecycle), on_leave, approvals, access_requests)

    def matches(self, worker: Worker, now: datetime) -> list[tuple[CompiledPolicy, bool]]:
        """Each policy with the value of its condition for this worker (for `explain`)."""
        out = []
        for policy in self.policies:
            try:
                out.append((policy, policy.condition.evaluate(worker=worker, now=now)))
            except TemplateError as exc:
                raise PolicyError(f"policy {policy.name!r} on {worker.id}: {exc}") from None
        return out

    def entitlements(self, worker: Worker | None, now: datetime) -> dict[str, Entitlement]:
        """For each target: scope, granting and denying policies, desired groups, and what is due later."""
        result = {t: Entitlement(t) for t in self.targets}
        if worker is None:
            for ent in result.values():
                ent.why, ent.by_status = "worker no longer listed by the source", True
            return result
        for policy, matched in self.matches(worker, now):
            if not matched:
                continue
            for denied in policy.deny:
                if denied in result:
                    result[denied].denied_by.append(policy.name)
            for grant in policy.grants:
                ent = result[grant.target]
                ent.policies.append(policy.name)
                rendered = [group for template in grant.groups if (group := template.render(worker=worker, now=now))]
                ent.groups += [group for group in dict.fromkeys(rendered) if group not in ent.groups]
                rule = grant.approval or self.approvals.get(grant.target)
                if rule is None:
                    ent.open_policies.append(policy.name)
                else:
                    ent.gated.append(GatedGrant(policy.name, grant.target, tuple(dict.fromkeys(rendered)), rule))
        window = self.lifecycle.window(worker, now)
        for ent in result.values():
            self._settle(ent, window)
        return result

    def _settle(self, ent: Entitlement, window: Window) -> None:
        if not window.in_scope and window.starts_at is None:
            ent.why, ent.by_status = window.why, True  # a leaver loses access whatever the policies say
        elif ent.denied_by:
            ent.why = f"denied by policy {', '.join(ent.denied_by)}"
        elif not ent.policies:
            ent.why = "no policy grants this target"
        elif window.on_leave and self.on_leave.get(ent.target, "keep") == "disable":
            ent.why, ent.by_status, ent.leave = "on leave (on_leave: disable)", True, True
        elif not window.in_scope:
            ent.why, ent.by_status = window.why, True
            ent.starts_at, ent.enable_at, ent.ends_at = window.starts_at, window.enable_at, window.ends_at
        else:
            ent.in_scope, ent.enabled = True, window.enabled
            ent.enable_at, ent.ends_at = window.enable_at, window.ends_at
            ent.why = f"in scope of policy {', '.join(ent.policies)}" + (f" ({window.why})" if window.why else "")
        if not ent.in_scope and not ent.by_status:
            ent.groups = []
