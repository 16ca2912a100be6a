"""Desired state vs what a target holds, as named situations (a pure function, no I/O).

confirmed · drifted · missing · unlinked · should_be_disabled · deprovisioned · orphaned · ambiguous
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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


def classify(
    target: str,
    desired: list[Desired],
    accounts: list[Account],
    links: dict[str, Link],
    compare_groups: bool = True,
    not_kept: frozenset[str] = frozenset(),
    managed: Callable[[str], bool] | None = None,
    deprovision: str = "disable",
) -> list[Item]:
    """`links` by worker id; `accounts` as listed; every account and every linked or in-scope worker
    ends up in exactly one item (an ambiguous pair may name several). Attributes the app does not
    keep (`not_kept`) are never drift: writing them again would change nothing. `managed` says which
    groups the engine owns (membership in one that is not desired is drift); `deprovision` is the
    target's on_terminate, the state a departed worker's account should be in."""
    by_id = {a.id: a for a in accounts}
    by_key: dict[str, list[Account]] = {}
    for account in accounts:
        for key in account_keys(account):
            by_key.setdefault(key, []).append(account)
    claimed: dict[str, list[str]] = {}  # account id → workers that correlate to it
    items: list[Item] = []
    for want in desired:
        matches = {a.id: a for key in want.keys for a in by_key.get(key, [])}
        link = links.get(want.worker_id)
        linked = by_id.get(link.account_id) if link else None
        for account_id in matches:
            claimed.setdefault(account_id, []).append(want.worker_id)
        if linked is not None:
            claimed.setdefault(linked.id, [])
            if want.worker_id not in claimed[linked.id]:
                claimed[linked.id].append(want.worker_id)
        others = [a for a in matches.values() if linked is None or a.id != linked.id]
        if linked is not None and others:
            items.append(
                Item(
                    Situation.ambiguous,
                    target,
                    want.worker_id,
                    linked.id,
                    [f"also matches account {a.id}" for a in others],
                )
            )
            continue
        if not want.in_scope and want.departed:
            held = linked or (next(iter(matches.values())) if len(matches) == 1 else None)
            items += departed(target, want, held, link, deprovision)
            continue
        if not want.in_scope:
            held = linked or (next(iter(matches.values())) if len(matches) == 1 else None)
            if held is not None and held.active:
                items.append(
                    Item(
                        Situation.should_be_disabled,
                        target,
                        want.worker_id,
                        held.id,
                        ["out of scope, account still active"],
                        held,
                    )
                )
            elif held is not None:
                items.append(Item(Situation.confirmed, target, want.worker_id, held.id, ["disabled"], held))
            continue
        if linked is None and link is not None and not matches:
            items.append(
                Item(Situation.missing, target, want.worker_id, link.account_id, ["linked account no longer exists"])
            )
        elif linked is None and not matches:
            items.append(Item(Situation.missing, target, want.worker_id, None, ["no account"]))
        elif linked is None and len(matches) > 1:
            items.append(
                Item(
                    Situation.ambiguous,
                    target,
                    want.worker_id,
                    None,
                    [f"matches accounts {', '.join(sorted(matches))}"],
                )
            )
        elif linked is None:
            account = next(iter(matches.values()))
            items.append(
                Item(
                    Situation.unlinked,
                    target,
                    want.worker_id,
                    account.id,
                    ["account matches by externalId/userName/email, no link stored"],
                    account,
                )
            )
        else:
            drift = differences(want, linked, compare_groups, not_kept, managed)
            items.append(
                Item(
                    Situation.drifted if drift else Situation.confirmed,
                    target,
                    want.worker_id,
                    linked.id,
                    drift,
                    linked,
                )
            )
    for account in accounts:
        workers = claimed.get(account.id, [])
        if len(workers) > 1:
            items.append(
                Item(
                    Situation.ambiguous,
                    target,
                    None,
                    account.id,
                    [f"matches workers {', '.join(sorted(workers))}"],
                    account,
                )
            )
        elif not workers and not any(item.account_id == account.id for item in items):
            items.append(Item(Situation.orphaned, target, None, account.id, ["matches no worker"], account))
    return items


def same_value(path: str, held: Any, wanted: Any) -> bool:
    """userName is caseExact=false (RFC 7643 §4.1.1): "Ada@Example.com" is "ada@example.com"."""
    if path == "userName" and isinstance(held, str) and isinstance(wanted, str):
        return held.lower() == wanted.lower()
    return bool(held == wanted)


def departed(target: str, want: Desired, held: Account | None, link: Link | None, deprovision: str) -> list[Item]:
    """A leaver's account: in the target's deprovisioned state (disabled, or gone for `delete`) it
    is settled; otherwise it needs fixing."""
    if held is None:  # gone: a linked one is counted, never having had one is nothing to say
        if link is None:
            return []
        return [Item(Situation.deprovisioned, target, want.worker_id, link.account_id, ["account no longer exists"])]
    if held.active or deprovision == "delete":
        why = "worker left, account still active" if held.active else "worker left, account not yet deleted"
        return [Item(Situation.should_be_disabled, target, want.worker_id, held.id, [why], held)]
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
