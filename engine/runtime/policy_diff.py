"""The access effect of replacing one config with another (`provisioner diff`).

Everyone in the population is planned under both configs by the one planner (no I/O; from the
stored links, which are the accounts they hold now). Each plan is played onto those accounts and
the two outcomes are compared: what the new config gives that the base would not is the change.
The policy logic lives in the planner alone; here only Actions are read, by their kind, and a kind
this module does not play (a grant waiting for approval, say) is compared as it is, in a section
of its own."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provisioner.engine.contracts.events import internal_event
from provisioner.engine.contracts.models import Action, ActionKind, Worker
from provisioner.engine.contracts.records import Link
from provisioner.engine.runtime.diff_report import REVOCATIONS, Change, DiffReport, MappingChange
from provisioner.engine.runtime.population import Population
from provisioner.rules.planner import AccountOf, Planner
from provisioner.rules.policy import CompiledPolicy, Entitlement, PolicyError

ORIGIN = "provisioner/diff"
# The kinds `play` knows how to apply; any other (one added after this module) is compared as it is.
_PLAYED = frozenset(
    {
        ActionKind.create,
        ActionKind.update,
        ActionKind.enable,
        ActionKind.disable,
        ActionKind.delete,
        ActionKind.add_groups,
        ActionKind.remove_groups,
        ActionKind.noop,
    }
)
# Losing access: the policies that granted it before (or deny it now) are why.
_LOSSES = REVOCATIONS


@dataclass
class Outcome:
    """What one person holds in one target once a plan has run."""

    exists: bool
    active: bool
    groups: set[str]
    attributes: dict[str, Any]
    other: dict[tuple[str, ...], Action] = field(default_factory=dict)  # kinds not played, deferred actions


def play(link: Link | None, actions: list[Action]) -> Outcome:
    out = Outcome(link is not None, bool(link and link.active), set(link.groups) if link else set(), {})
    out.attributes = dict(link.attributes) if link else {}
    for a in actions:
        kind = a.action
        if a.effective_at is not None or kind not in _PLAYED:
            out.other[(str(kind), *a.groups, a.effective_at.isoformat() if a.effective_at else "")] = a
        elif kind is ActionKind.create:
            out.exists, out.active = True, a.attributes.get("active") is not False
            out.attributes = {k: v for k, v in a.attributes.items() if k != "active"}
        elif kind is ActionKind.delete:
            out.exists, out.active, out.groups, out.attributes = False, False, set(), {}
        elif kind in (ActionKind.enable, ActionKind.disable):
            out.active = kind is ActionKind.enable
        elif kind is ActionKind.add_groups:
            out.groups |= set(a.groups)
        elif kind is ActionKind.remove_groups:
            out.groups -= set(a.groups)
        elif kind is ActionKind.update:
            out.attributes.update(a.attributes)
            out.attributes = {k: v for k, v in out.attributes.items() if v is not None}
    return out


def _signature(policy: CompiledPolicy) -> tuple[Any, ...]:
    grants = tuple((g.target, tuple(t.source for t in g.groups)) for g in policy.grants)
    return (policy.condition.source, grants, policy.deny)


def changed_policies(base: Planner, new: Planner) -> frozenset[str]:
    """The names of the policies the change adds, removes or edits."""
    before = {p.name: _signature(p) for p in base.policies.policies}
    after = {p.name: _signature(p) for p in new.policies.policies}
    return frozenset(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))


class _Planned:
    """One person under both configs: the rule book's answer for them (computed once, for the
    shortcut and for naming the policies responsible), then both plans when they may differ."""

    def __init__(
        self, planners: tuple[Planner, Planner], changed: frozenset[str], worker: Worker | None, now: datetime
    ):
        self.base, self.new = planners
        self.worker, self.now, self.changed = worker, now, changed
        self.before = self._entitlements(self.base)
        self.after = self._entitlements(self.new)

    def _entitlements(self, planner: Planner) -> dict[str, Entitlement] | None:
        try:
            return planner.policies.entitlements(self.worker, self.now)
        except PolicyError:
            return None

    def alike(self) -> bool:
        """Both configs say the same of this person, through no policy the change edits: with the
        targets configured alike, both plans are the same, so neither needs making."""
        if self.before is None or self.after is None or self.before != self.after:
            return False
        return not any(self.changed.intersection(e.policies, e.denied_by) for e in self.after.values())


def _spec_signature(planner: Planner) -> dict[str, tuple[Any, ...]]:
    return {
        name: (
            s.on_terminate,
            {p: t.source for p, t in s.mapping.items()},
            s.deprovision_out_of_scope,
            s.remove_groups,
            s.out_of_scope,
        )
        for name, s in planner.targets.items()
    }


def compare(
    base: Planner,
    new: Planner,
    population: Population,
    now: datetime,
    targets: list[str] | None = None,
    *,
    targets_alike: bool = False,
) -> DiffReport:
    """Every change the new config makes against the base, for everyone in the population.
    `targets_alike`: the caller found the two configs' target blocks equal, so a person both rule
    books treat alike is not planned at all (most people, for most changes)."""
    report = DiffReport(population=len(population.workers) + len(population.gone))
    workers = {w.id: w for w in population.workers}
    links = population.links

    def account_of(worker_id: str, target: str) -> str | None:  # a manager's account, from the links in hand
        link = links.get(worker_id, {}).get(target)
        return link.account_id if link is not None else None

    names = sorted(set(base.targets) | set(new.targets))
    wanted = [t for t in names if targets is None or t in targets]
    changed = changed_policies(base, new)
    subjects: list[tuple[str, Worker | None]] = [(w.id, w) for w in population.workers]
    subjects += [(wid, None) for wid in population.gone]
    alike = targets_alike and _spec_signature(base) == _spec_signature(new)
    for worker_id, worker in subjects:
        planned = _Planned((base, new), changed, worker, now)
        if alike and planned.alike():
            continue
        event = internal_event(ORIGIN, worker_id, worker, "diff")
        held = links.get(worker_id, {})
        if not population.attributes and worker is not None:
            held = _as_written(base, held, worker, now, account_of)
        try:
            before = base.plan(event, held, now, account_of)
        except PolicyError as exc:
            report.notes.append(f"the base config cannot be evaluated for {worker_id}: {exc}")
            before = []
        try:
            after = new.plan(event, held, now, account_of)
        except PolicyError as exc:
            report.errors.append(str(exc))
            continue
        changes = [c for t in wanted for c in _target_changes(t, held.get(t), before, after, worker_id)]
        if changes:
            report.changes += _attributed(changes, planned)
            if name := population.name_of(worker_id, workers):
                report.names[worker_id] = name
    report.mappings = _mapping_changes(base, new, report.changes, wanted)
    report.notes += _target_notes(base, new, wanted)
    return report


def _as_written(
    base: Planner, held: dict[str, Link], worker: Worker, now: datetime, accounts: AccountOf
) -> dict[str, Link]:
    """Links without what was written (a pseudonymous file): assume the base config's mapping was."""
    out = {}
    for target, link in held.items():
        spec = base.targets.get(target)
        try:
            written = spec.render(worker, now, accounts) if spec else {}
        except PolicyError:
            written = {}
        out[target] = link.model_copy(update={"attributes": written})
    return out


def _target_changes(
    target: str, link: Link | None, before: list[Action], after: list[Action], wid: str
) -> list[Change]:
    b = play(link, [a for a in before if a.target == target])
    n = play(link, [a for a in after if a.target == target])
    out: list[Change] = []
    held = link is not None
    if b.exists != n.exists:
        out.append(_turn(target, wid, n.exists, held, ActionKind.create, ActionKind.delete))
    elif b.exists and b.active != n.active:
        out.append(_turn(target, wid, n.active, bool(link and link.active), ActionKind.enable, ActionKind.disable))
    now = set(link.groups) if link else set()
    for g in sorted(n.groups ^ b.groups):
        out.append(_turn(target, wid, g in n.groups, g in now, ActionKind.add_groups, ActionKind.remove_groups, g))
    if b.exists and n.exists:
        paths = {p for p in b.attributes.keys() | n.attributes.keys() if b.attributes.get(p) != n.attributes.get(p)}
        out += [Change(target, ActionKind.update, wid, p) for p in sorted(paths)]
    for key in n.other.keys() - b.other.keys():
        out.append(Change(target, key[0], wid, _other_detail(n.other[key])))
    for key in b.other.keys() - n.other.keys():
        out.append(Change(target, key[0], wid, _other_detail(b.other[key]), undone=True))
    return out


def _turn(
    target: str, wid: str, gained: bool, held: bool, gain: ActionKind, loss: ActionKind, detail: str = ""
) -> Change:
    """Where the two outcomes differ, said from what the person holds now: the new config grants
    what they lack or takes what they hold; or it no longer does what the base config would
    (`undone`: grant what they lack, or take what they hold), which only a store not yet in the
    base config's state shows."""
    if gained:
        return Change(target, loss, wid, detail, undone=True) if held else Change(target, gain, wid, detail)
    return Change(target, loss, wid, detail) if held else Change(target, gain, wid, detail, undone=True)


def _other_detail(action: Action) -> str:
    parts = [", ".join(action.groups)] if action.groups else []
    if action.effective_at is not None:
        parts.append(f"at {action.effective_at:%Y-%m-%d %H:%M %Z}")
    return "; ".join(parts)


def _attributed(changes: list[Change], planned: _Planned) -> list[Change]:
    """Each change with the policies responsible: those that grant it now, or, for access lost,
    those that deny it now or granted it before. Evaluated only for people with a change."""
    before, after = planned.before or {}, planned.after or {}
    out = []
    for c in changes:
        ent, old = after.get(c.target), before.get(c.target)
        lost = (c.kind in _LOSSES) != c.undone
        if lost:
            policies = (ent.denied_by if ent and ent.denied_by else old.policies if old else []) or []
        else:
            policies = ent.policies if ent else []
        # Of those, the ones this change edits are the ones responsible, when there are any.
        policies = [p for p in policies if p in planned.changed] or policies
        why = ent.why if ent else "target not in the new config"
        out.append(Change(c.target, str(c.kind), c.worker_id, c.detail, tuple(policies), why, c.undone))
    return out


def _mapping_changes(base: Planner, new: Planner, changes: list[Change], targets: list[str]) -> list[MappingChange]:
    people = Counter((c.target, c.detail) for c in changes if c.kind == ActionKind.update)
    out = []
    for target in targets:
        if target not in base.targets or target not in new.targets:
            continue
        old = {p: t.source for p, t in base.targets[target].mapping.items()}
        now = {p: t.source for p, t in new.targets[target].mapping.items()}
        for path in sorted(old.keys() | now.keys()):
            if old.get(path) != now.get(path):
                out.append(MappingChange(target, path, old.get(path), now.get(path), people[(target, path)]))
    return out


def _target_notes(base: Planner, new: Planner, targets: list[str]) -> list[str]:
    notes = []
    for t in targets:
        if t not in new.targets:
            notes.append(f"target {t} is not in the new config: the engine stops managing it, its accounts stay")
        elif t not in base.targets:
            notes.append(f"target {t} is new: everyone in scope gets an account")
    return notes
