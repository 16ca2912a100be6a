"""Access an approved request gives (engine/runtime/agent_requests.py): an account and groups in
one target for one person that no policy gives. Planned like a policy's grant while the person is
in the company, so reconcile counts it as desired; lost like any access when they leave. A
policy's deny beats it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime

from provisioner.engine.contracts.approvals import AccessGrant
from provisioner.engine.contracts.models import Worker
from provisioner.rules.policy import Entitlement, PolicySet


def with_requested(
    policies: PolicySet,
    entitlements: dict[str, Entitlement],
    approved: Collection[str],
    worker: Worker | None,
    now: datetime,
) -> dict[str, Entitlement]:
    """`entitlements` (per target), with what the `AccessGrant` keys among `approved` give."""
    grants: dict[str, list[AccessGrant]] = {}
    for key in approved:
        if (grant := AccessGrant.parse(key)) is not None and grant.target in entitlements:
            grants.setdefault(grant.target, []).append(grant)
    if worker is None or not grants:
        return entitlements
    return {
        name: _with(policies, ent, grants[name], worker, now) if name in grants else ent
        for name, ent in entitlements.items()
    }


def requested_lasts(ent: Entitlement) -> bool:
    """Whether access a request gives in this target keeps its reason: the person has not left (on
    leave, or before the start date, still counts) and no policy denies it."""
    return not ent.denied_by and (ent.in_scope or ent.leave or ent.starts_at is not None or not ent.by_status)


def _with(
    policies: PolicySet, ent: Entitlement, grants: list[AccessGrant], worker: Worker, now: datetime
) -> Entitlement:
    if ent.denied_by or ent.by_status:
        return ent  # denied, or out by status and dates (a leaver): no request gives access
    names = [g.policy for g in grants]
    groups = list(dict.fromkeys([*ent.groups, *(group for g in grants for group in g.groups)]))
    why = "; ".join(g.why for g in grants)
    if ent.in_scope:
        return replace(
            ent,
            policies=[*ent.policies, *names],
            open_policies=[*ent.open_policies, *names],  # the account is given: a gated grant no longer holds it
            groups=groups,
            why=f"{ent.why}; {why}",
        )
    # In the company, and no policy grants this target: the status and dates decide as for a policy.
    window = policies.lifecycle.window(worker, now)
    if window.on_leave and policies.on_leave.get(ent.target, "keep") == "disable":
        return replace(ent, why="on leave (on_leave: disable)", by_status=True, leave=True)
    return replace(
        ent,
        in_scope=True,
        enabled=window.enabled,
        enable_at=window.enable_at,
        ends_at=window.ends_at,
        policies=names,
        open_policies=names,
        groups=groups,
        why=why + (f" ({window.why})" if window.why else ""),
    )
