"""One reconciliation: list each target, compute the desired state, classify, and prepare the fixes.

Fixes never write to a target directly. The stored links are set to what the target really holds,
and an event per worker goes through the outbox, so the planner and writers heal the drift on the
same path as every other change — the provisioning log says "reconcile" as the cause.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import RECONCILE_SOURCE, internal_event
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import KnowsNotKept, ListsAccounts, ListsGroups, Target
from provisioner.engine.contracts.records import Link, LogEntry, utcnow
from provisioner.engine.kit.words import plural
from provisioner.engine.store import Store
from provisioner.reconcile.classify import (
    FIXED_BY_DEFAULT,
    SETTLED,
    Desired,
    Item,
    Situation,
    classify,
    correlation_keys,
)
from provisioner.reconcile.groups import DuplicateGroups, find_duplicates, merge_duplicates
from provisioner.reconcile.listing import failed, list_all
from provisioner.rules.groups import ManagedGroups
from provisioner.rules.planner import Planner, allowed_now
from provisioner.rules.policy import Entitlement, PolicySet


class Parts(Protocol):
    """What a reconciliation needs of the engine's wiring (the runtime hands its own in)."""

    config: Config
    planner: Planner
    policies: PolicySet
    store: Store
    targets: dict[str, Target]

    def approved(self, worker_ids: list[str]) -> dict[str, set[str]]: ...


log = logging.getLogger("provisioner.reconcile")


@dataclass
class Reconciliation:
    items: list[Item] = field(default_factory=list)
    listing_s: float = 0.0
    classify_s: float = 0.0
    accounts: int = 0
    not_kept: dict[str, list[str]] = field(default_factory=dict)  # target → attributes the app drops
    duplicate_groups: list[DuplicateGroups] = field(default_factory=list)
    unlisted: dict[str, str] = field(default_factory=dict)  # target → why its listing could not be trusted
    unread_groups: dict[str, list[str]] = field(default_factory=dict)  # target → groups too large to compare

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for item in self.items:
            out.setdefault(item.target, Counter())[item.situation.value] += 1
        return {target: dict(counts) for target, counts in out.items()}

    def settled(self) -> bool:
        """Nothing needs attention and every target could be judged."""
        return not (self.needing_attention() or self.duplicate_groups or self.unlisted or self.unread_groups)

    def needing_attention(self) -> list[Item]:
        return [i for i in self.items if i.situation not in SETTLED]


def _workers(parts: Parts) -> list[Worker]:
    handed = parts.store.snapshots.handovers()  # a pre-hire's accounts belong to its successor now
    joined = parts.store.identities.joined()  # a joined record's accounts are its person's (docs/identity.md)
    persons = parts.store.identities.planned()
    workers = [
        persons.pop(worker.id, worker)
        for source in parts.config.sources
        for _, worker in parts.store.snapshots.of_source(source.name).values()
        if worker.id not in handed and worker.id not in joined
    ]
    return workers + list(persons.values())  # a person whose first record is gone


def desired_state(
    parts: Parts,
    target: str,
    workers: list[Worker],
    entitlements: dict[str, dict[str, Entitlement]],
    links: dict[str, Link],
    now: datetime,
    approved: dict[str, set[str]] | None = None,
) -> list[Desired]:
    """`entitlements` by worker id (for every target), `links` this target's by worker id,
    `approved` the keys of each worker's approved grants (a grant that waits is not desired yet)."""
    spec = parts.planner.targets[target]

    def account_of(worker_id: str, _target: str) -> str | None:  # a manager's account, from links in hand
        link = links.get(worker_id)
        return link.account_id if link is not None else None

    out = []
    for worker in workers:
        ent = entitlements[worker.id][target]
        if ent.in_scope and ent.gated:
            ent = allowed_now(ent, links.get(worker.id), (approved or {}).get(worker.id, ())) or Entitlement(target)
        if not ent.in_scope and worker.id not in links and ent.starts_at is None:
            continue  # nothing should exist and nothing we made exists; their accounts would be orphans
        attributes = spec.render(worker, now, account_of)
        out.append(
            Desired(
                worker.id,
                ent.in_scope,
                ent.enabled,
                attributes if ent.in_scope else {},
                ent.groups,
                tuple(sorted(correlation_keys(attributes))),
                departed=not ent.in_scope and ent.by_status and not ent.leave and ent.starts_at is None,
            )
        )
    # Removed from their source (no snapshot left), but we made them an account: a leaver, not an orphan.
    known = {w.id for w in workers}
    sources = {s.name for s in parts.config.sources}
    for worker_id, link in links.items():
        if worker_id not in known and WorkerId.parse(worker_id).source in sources:
            keys = tuple(sorted(correlation_keys(link.attributes)))
            out.append(Desired(worker_id, in_scope=False, enabled=False, keys=keys, departed=True))
    return out


def managed_groups(parts: Parts, target: str) -> ManagedGroups:
    return ManagedGroups.of(parts.policies, target, parts.config.target(target).manage_groups)


async def reconcile(
    parts: Parts,
    targets: list[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
    now: datetime | None = None,
) -> Reconciliation:
    now = now or datetime.now(UTC)
    result = Reconciliation()
    workers = _workers(parts)
    approved = parts.approved([w.id for w in workers])
    # once, for every target; access an approved request gives is desired like a policy's grant
    entitlements = {w.id: parts.planner.entitlements(w, now, approved.get(w.id, ())) for w in workers}
    for name in targets or list(parts.targets):
        start = time.perf_counter()
        target = parts.targets[name]
        if not isinstance(target, ListsAccounts):  # nothing to compare with: every account would look missing
            log.warning("target %s cannot list its accounts; it is not reconciled", name)
            continue
        accounts = await list_all(name, target, progress)
        listed = time.perf_counter()
        result.listing_s += listed - start
        if isinstance(accounts, str):
            result.unlisted[name] = accounts
            continue
        unread = target.unread_groups() if isinstance(target, ListsGroups) else frozenset()
        if unread:
            result.unread_groups[name] = sorted(unread)
        links = {link.worker_id: link for link in parts.store.links.all(name)}
        not_kept = frozenset(target.not_kept() if isinstance(target, KnowsNotKept) else ())
        if not_kept:
            result.not_kept[name] = sorted(not_kept)
        result.items += classify(
            name,
            desired_state(parts, name, workers, entitlements, links, now, approved),
            accounts,
            links,
            compare_groups=isinstance(target, ListsGroups),  # its listing names each account's groups
            not_kept=not_kept,
            managed=managed_groups(parts, name),
            deprovision=parts.config.target(name).on_terminate.action,
            remove_groups=parts.config.target(name).on_terminate.remove_groups,
            unread=unread,
        )
        try:
            result.duplicate_groups += await find_duplicates(name, target)
        except Exception as exc:  # the app's answer, as in `list_all`: said, never a traceback
            result.unlisted[name] = f"its groups could not be listed: {failed(exc)}"
        result.classify_s += time.perf_counter() - listed
        result.accounts += len(accounts)
    return result


def chosen_actions(parts: Parts) -> dict[Situation, str]:
    """What to do per situation: the config's `reconcile.actions` over the defaults."""
    actions: dict[Situation, str] = {
        s: "fix" if s in FIXED_BY_DEFAULT else "report" for s in Situation if s not in SETTLED
    }
    actions.update({Situation(k): v for k, v in parts.config.reconcile.actions.items()})
    return actions


async def handle_orphans(parts: Parts, result: Reconciliation) -> list[str]:
    """Orphaned accounts have no worker and so no event: `disable` / `delete` act on them directly,
    logged like every write, within the safety limit."""
    action = chosen_actions(parts).get(Situation.orphaned, "report")
    orphans = [
        i
        for i in result.items
        if i.situation is Situation.orphaned
        and i.account_id
        and (action == "delete" or (i.account is None or i.account.active))
    ]
    if action not in ("disable", "delete") or not orphans:
        return []
    limit = parts.config.safety.max_deprovisions
    if limit is not None and len(orphans) > limit:
        return [f"{len(orphans)} orphaned accounts to {action}, over safety.max_deprovisions ({limit}): none touched"]
    entries = []
    for item in orphans:
        target = parts.targets[item.target]
        assert item.account_id is not None  # an orphan is an account
        outcome = await (target.delete(item.account_id) if action == "delete" else target.disable(item.account_id))
        entries.append(
            LogEntry(
                worker_id=f"orphan:{item.account_id}",
                target=item.target,
                action=action,
                reason="reconcile: the account matches no worker",
                result=outcome.status.value,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
    parts.store.log.append(entries)
    return [f"{action}d {sum(e.result == 'success' for e in entries)} orphaned accounts"]


def prepare_fixes(parts: Parts, result: Reconciliation) -> tuple[int, list[str]]:
    """Links set to reality and one event per worker to heal; returns (events, notes)."""
    notes: list[str] = []
    fix = {s for s, action in chosen_actions(parts).items() if action == "fix"}
    chosen = [i for i in result.items if i.situation in fix and i.worker_id]
    deprovisions = {i.worker_id for i in chosen if i.situation is Situation.should_be_disabled}
    limit = parts.config.safety.max_deprovisions
    if limit is not None and len(deprovisions) > limit:
        chosen = [i for i in chosen if i.situation is not Situation.should_be_disabled]
        notes.append(
            f"{plural(len(deprovisions), 'account')} should be disabled, over safety.max_deprovisions ({limit}): "
            f"left for a person to look at"
        )
    upserts: list[Link] = []
    removals: list[tuple[str, str]] = []
    stored = {(link.worker_id, link.target): link for link in parts.store.links.all()}
    owned = {name: managed_groups(parts, name) for name in {i.target for i in chosen}}
    for item in chosen:
        assert item.worker_id is not None
        key = (item.worker_id, item.target)
        if item.account is not None:  # what the target really holds becomes what we believe
            # Groups we wrote, and groups we own that someone else added: the planner then removes
            # whichever of them the worker should not have.
            managed = set(stored[key].groups) if key in stored else set()
            managed |= {g for g in item.account.groups if owned[item.target](g)}
            # A group too large to read was listed without its members: the link's word stands for it.
            unseen = managed & set(result.unread_groups.get(item.target, ()))
            upserts.append(
                Link(
                    worker_id=item.worker_id,
                    target=item.target,
                    account_id=item.account.id,
                    active=item.account.active,
                    attributes=dict(item.account.attributes),
                    groups=sorted((set(item.account.groups) & managed) | unseen),
                    updated_at=utcnow(),
                )
            )
        elif key in stored:
            removals.append(key)  # the account is gone: the planner will create it again
    run = uuid.uuid4().hex
    events = [
        internal_event(RECONCILE_SOURCE, wid, parts.store.identities.person(wid) or parts.store.snapshots.get(wid), run)
        for wid in sorted({i.worker_id for i in chosen if i.worker_id})
    ]
    parts.store.links.reconcile(upserts, removals, events)
    return len(events), notes


async def apply_fixes(parts: Parts, result: Reconciliation) -> tuple[int, list[str]]:
    """Everything `--fix` (or a scheduled run with `fix: true`) does: heal through events, then act
    on orphaned accounts if configured. Returns (events sent, notes for a person)."""
    events, notes = prepare_fixes(parts, result)
    merged = await merge_duplicates(parts.store, parts.targets, result.duplicate_groups)
    return events, notes + merged + await handle_orphans(parts, result)
