"""Desired state vs what a target holds, as named situations (a pure function, no I/O).

confirmed · drifted · missing · unlinked · should_be_disabled · deprovisioned · orphaned · ambiguous
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from provisioner.engine.contracts.models import Account
from provisioner.engine.contracts.records import Link


class Situation(StrEnum):
    confirmed = "confirmed"
    drifted = "drifted"
    missing = "missing"
    unlinked = "unlinked"
    should_be_disabled = "should_be_disabled"
    deprovisioned = "deprovisioned"
    orphaned = "orphaned"
    ambiguous = "ambiguous"


FIXED_BY_DEFAULT = frozenset({Situation.drifted, Situation.missing, Situation.unlinked, Situation.should_be_disabled})
# As it should be: nothing to report and nothing to act on.
SETTLED = frozenset({Situation.confirmed, Situation.deprovisioned})


@dataclass
class Desired:
    """What one worker should have in one target (from the snapshot and the policies)."""

    worker_id: str
    in_scope: bool
    enabled: bool = True
    attributes: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    keys: tuple[str, ...] = ()  # correlation keys: externalId, userName, email (lower-cased)
    departed: bool = False  # terminated, past the termination date, or removed from the source


@dataclass
class Item:
    situation: Situation
    target: str
    worker_id: str | None
    account_id: str | None
    details: list[str] = field(default_factory=list)
    account: Account | None = None

    @property
    def user_name(self) -> str | None:
        """The account's userName: what a person recognises an orphan by, beside the app's id."""
        name = self.account.attributes.get("userName") if self.account else None
        return str(name) if name else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "situation": self.situation.value,
            "target": self.target,
            "worker_id": self.worker_id,
            "account_id": self.account_id,
            "user_name": self.user_name,
            "details": self.details,
        }


KEY_ATTRIBUTES = frozenset({"externalId", "userName", "email", "external_id", "externalDirectoryId"})


def is_key(path: str) -> bool:
    """Attributes that identify a person across the engine and an app: ids, usernames, emails."""
    return path in KEY_ATTRIBUTES or path.startswith("emails")


def correlation_keys(attributes: dict[str, Any]) -> set[str]:
    """The same keys whether they come from desired attributes or from a listed account."""
    return {str(v).lower() for k, v in attributes.items() if v and is_key(k)}


def account_keys(account: Account) -> set[str]:
    return correlation_keys(account.attributes)


@dataclass(frozen=True)
class Rules:
    """How one target judges an account: the arguments of `classify` every situation shares."""

    target: str
    compare_groups: bool = True
    not_kept: frozenset[str] = frozenset()
    managed: Callable[[str], bool] | None = None
    deprovision: str = "disable"
    remove_groups: bool = True  # a leaver's disabled account keeps none of the managed groups
    unread: frozenset[str] = frozenset()  # groups too large to read: what the link says of them stands


@dataclass(frozen=True)
class Found:
    """What the target holds for one worker: its stored link, the account that link names (None
    when it is gone) and every account its correlation keys match, by id."""

    link: Link | None
    linked: Account | None
    matches: dict[str, Account]

    @property
    def held(self) -> Account | None:
        """The worker's account: the linked one, else the only match."""
        if self.linked is not None:
            return self.linked
        return next(iter(self.matches.values())) if len(self.matches) == 1 else None


class AccountIndex:
    """The listed accounts by id and by correlation key, built once so that finding a worker's
    accounts costs its keys, not a scan of the target."""

    def __init__(self, accounts: list[Account]):
        self.by_id = {a.id: a for a in accounts}
        self.by_key: dict[str, list[Account]] = {}
        for account in accounts:
            for key in account_keys(account):
                self.by_key.setdefault(key, []).append(account)

    def find(self, want: Desired, link: Link | None) -> Found:
        matches = {a.id: a for key in want.keys for a in self.by_key.get(key, [])}
        return Found(link, self.by_id.get(link.account_id) if link else None, matches)


def classify(
    target: str,
    desired: list[Desired],
    accounts: list[Account],
    links: dict[str, Link],
    compare_groups: bool = True,
    not_kept: frozenset[str] = frozenset(),
    managed: Callable[[str], bool] | None = None,
    deprovision: str = "disable",
    remove_groups: bool = True,
    unread: frozenset[str] = frozenset(),
) -> list[Item]:
    """`links` by worker id; `accounts` as listed; every account and every linked or in-scope worker
    ends up in exactly one item (an ambiguous pair may name several). Attributes the app does not
    keep (`not_kept`) are never drift: writing them again would change nothing. `managed` says which
    groups the engine owns (membership in one that is not desired is drift); `deprovision` is the
    target's on_terminate, the state a departed worker's account should be in, with or without the
    managed groups (`remove_groups`). Groups whose members the listing could not read (`unread`) are
    compared for nobody: neither missing nor kept."""
    if unread:
        desired = [replace(want, groups=[g for g in want.groups if g not in unread]) for want in desired]
        owned = managed
        managed = None if owned is None else (lambda group: group not in unread and owned(group))
    rules = Rules(target, compare_groups, not_kept, managed, deprovision, remove_groups, unread)
    index = AccountIndex(accounts)
    claimed: dict[str, list[str]] = {}  # account id → workers that correlate to it
    items: list[Item] = []
    for want in desired:
        found = index.find(want, links.get(want.worker_id))
        claim(claimed, want.worker_id, found)
        items += situation(rules, want, found)
    return items + unclaimed(target, accounts, claimed, {item.account_id for item in items})


def claim(claimed: dict[str, list[str]], worker_id: str, found: Found) -> None:
    """Record that the worker correlates to its matches and to its linked account."""
    for account_id in found.matches:
        claimed.setdefault(account_id, []).append(worker_id)
    if found.linked is not None:
        holders = claimed.setdefault(found.linked.id, [])
        if worker_id not in holders:
            holders.append(worker_id)


def situation(rules: Rules, want: Desired, found: Found) -> list[Item]:
    """The one situation of a worker in a target (none for a leaver who never had an account)."""
    linked = found.linked
    others = [a for a in found.matches.values() if linked is None or a.id != linked.id]
    if linked is not None and others:
        return [linked_but_matching_others(rules.target, want, linked, others)]
    if not want.in_scope and want.departed:
        return departed(rules, want, found.held, found.link)
    if not want.in_scope:
        return out_of_scope(rules.target, want, found.held)
    if linked is None:
        return [unlinked(rules.target, want, found)]
    return [linked_account(rules, want, linked)]


def linked_but_matching_others(target: str, want: Desired, linked: Account, others: list[Account]) -> Item:
    details = [f"also matches account {a.id}" for a in others]
    return Item(Situation.ambiguous, target, want.worker_id, linked.id, details)


def out_of_scope(target: str, want: Desired, held: Account | None) -> list[Item]:
    """A worker no policy grants this app any more: an active account should be disabled."""
    if held is None:
        return []
    if held.active:
        details = ["out of scope, account still active"]
        return [Item(Situation.should_be_disabled, target, want.worker_id, held.id, details, held)]
    return [Item(Situation.confirmed, target, want.worker_id, held.id, ["disabled"], held)]


def unlinked(target: str, want: Desired, found: Found) -> Item:
    """An in-scope worker without a live linked account: missing, matched once, or ambiguous."""
    if not found.matches and found.link is not None:
        details = ["linked account no longer exists"]
        return Item(Situation.missing, target, want.worker_id, found.link.account_id, details)
    if not found.matches:
        return Item(Situation.missing, target, want.worker_id, None, ["no account"])
    if len(found.matches) > 1:
        details = [f"matches accounts {', '.join(sorted(found.matches))}"]
        return Item(Situation.ambiguous, target, want.worker_id, None, details)
    account = next(iter(found.matches.values()))
    details = ["account matches by externalId/userName/email, no link stored"]
    return Item(Situation.unlinked, target, want.worker_id, account.id, details, account)


def linked_account(rules: Rules, want: Desired, linked: Account) -> Item:
    """An in-scope worker's linked account: confirmed, or drifted with what differs."""
    drift = differences(want, linked, rules.compare_groups, rules.not_kept, rules.managed)
    return Item(
        Situation.drifted if drift else Situation.confirmed, rules.target, want.worker_id, linked.id, drift, linked
    )


def unclaimed(
    target: str, accounts: list[Account], claimed: dict[str, list[str]], named: set[str | None]
) -> list[Item]:
    """Accounts seen from the app's side: one several workers match is ambiguous; one no worker
    matches and no item names yet is an orphan. `named` is the account ids the items name."""
    items: list[Item] = []
    for account in accounts:
        workers = claimed.get(account.id, [])
        if len(workers) > 1:
            details = [f"matches workers {', '.join(sorted(workers))}"]
            items.append(Item(Situation.ambiguous, target, None, account.id, details, account))
        elif not workers and account.id not in named:
            items.append(Item(Situation.orphaned, target, None, account.id, ["matches no worker"], account))
        else:
            continue
        named.add(account.id)  # a repeated id in the listing is told once
    return items


def same_value(path: str, held: Any, wanted: Any) -> bool:
    """userName is caseExact=false (RFC 7643 §4.1.1): "Ada@Example.com" is "ada@example.com"."""
    if path == "userName" and isinstance(held, str) and isinstance(wanted, str):
        return held.lower() == wanted.lower()
    return bool(held == wanted)


def departed(rules: Rules, want: Desired, held: Account | None, link: Link | None) -> list[Item]:
    """A leaver's account: in the target's deprovisioned state (disabled and out of the managed
    groups, or gone for `delete`) it is settled; otherwise it needs fixing."""
    target = rules.target
    if held is None:  # gone: a linked one is counted, never having had one is nothing to say
        if link is None:
            return []
        return [Item(Situation.deprovisioned, target, want.worker_id, link.account_id, ["account no longer exists"])]
    if held.active or rules.deprovision == "delete":
        why = "worker left, account still active" if held.active else "worker left, account not yet deleted"
        return [Item(Situation.should_be_disabled, target, want.worker_id, held.id, [why], held)]
    kept = sorted(
        {g for g in held.groups if rules.managed is not None and rules.managed(g)}
        | {g for g in (link.groups if link is not None else []) if g in rules.unread}  # not seen: as last written
    )
    if kept and rules.remove_groups and rules.compare_groups:  # access through the groups outlives the account
        details = [f"worker left, account disabled, still in groups: {', '.join(kept)}"]
        return [Item(Situation.drifted, target, want.worker_id, held.id, details, held)]
    return [Item(Situation.deprovisioned, target, want.worker_id, held.id, ["worker left, account disabled"], held)]


def differences(
    want: Desired,
    account: Account,
    compare_groups: bool,
    not_kept: frozenset[str] = frozenset(),
    managed: Callable[[str], bool] | None = None,
) -> list[str]:
    out = [
        f"{path}: {account.attributes.get(path)!r} → {value!r}"
        for path, value in want.attributes.items()
        if path not in not_kept and not same_value(path, account.attributes.get(path), value)
    ]
    if want.enabled and not account.active:
        out.append("active: False → True")
    if compare_groups:
        missing = sorted(set(want.groups) - set(account.groups))
        if missing:
            out.append(f"groups missing: {', '.join(missing)}")
        extra = sorted(g for g in set(account.groups) - set(want.groups) if managed is not None and managed(g))
        if extra:
            out.append(f"groups not granted: {', '.join(extra)}")
    return out
