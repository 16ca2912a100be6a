"""Compiled policies: every condition and template compiled once at load."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.config import PolicyConfig
from engine.models import Worker, WorkerStatus
from engine.templating import Condition, Template, TemplateError

IN_SCOPE_STATUSES = frozenset({WorkerStatus.active, WorkerStatus.pending})


class PolicyError(ValueError):
    """A policy that does not compile; the message names the policy."""


@dataclass(frozen=True)
class CompiledGrant:
    target: str
    groups: tuple[Template, ...]


@dataclass(frozen=True)
class CompiledPolicy:
    name: str
    condition: Condition
    grants: tuple[CompiledGrant, ...]

    @classmethod
    def compile(cls, config: PolicyConfig) -> CompiledPolicy:
        try:
            return cls(
                name=config.name,
                condition=Condition(config.when),
                grants=tuple(CompiledGrant(g.target, tuple(Template(t) for t in g.groups)) for g in config.grant),
            )
        except TemplateError as exc:
            raise PolicyError(f"policy {config.name!r}: {exc}") from None


@dataclass
class Entitlement:
    """What one worker should have in one target."""

    target: str
    in_scope: bool
    policies: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    why: str = ""


class PolicySet:
    def __init__(self, policies: list[CompiledPolicy], targets: list[str]):
        self.policies = policies
        self.targets = targets

    @classmethod
    def compile(cls, configs: list[PolicyConfig], targets: list[str]) -> PolicySet:
        return cls([CompiledPolicy.compile(c) for c in configs], targets)

    def entitlements(self, worker: Worker | None) -> dict[str, Entitlement]:
        """For each target: in scope or not, the granting policies and the desired groups."""
        result = {t: Entitlement(t, False) for t in self.targets}
        if worker is None:
            for ent in result.values():
                ent.why = "worker no longer listed by the source"
            return result
        for policy in self.policies:
            try:
                matched = policy.condition.evaluate(worker=worker)
            except TemplateError as exc:
                raise PolicyError(f"policy {policy.name!r} on {worker.id}: {exc}") from None
            if not matched:
                continue
            for grant in policy.grants:
                ent = result[grant.target]
                ent.policies.append(policy.name)
                for template in grant.groups:
                    group = template.render(worker=worker)
                    if group and group not in ent.groups:
                        ent.groups.append(group)
        for ent in result.values():
            if not ent.policies:
                ent.why = "no policy grants this target"
            elif worker.status not in IN_SCOPE_STATUSES:
                ent.why = f"status is {worker.status.value}"
            else:
                ent.in_scope = True
                ent.why = f"in scope of policy {', '.join(ent.policies)}"
        return result
