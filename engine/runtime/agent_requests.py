"""Requests an agent (or any caller who may not act alone) makes: provision a person now, retry
failures, grant one person access to one target. Each becomes an approval request a person decides
(docs/approvals.md); nothing happens before that. Who decides is `approvals.requests` in the config,
with the rule kinds of a grant's `approval:`; the decision runs through `approvals.decide`."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from provisioner.engine.config import ApprovalRule, Config
from provisioner.engine.contracts.approvals import (
    ACCESS_POLICY,
    ApprovalRequest,
    ApprovalState,
    grant_key,
)
from provisioner.engine.contracts.approvals import RequestKind as Kind
from provisioner.engine.contracts.models import Worker, WorkerStatus
from provisioner.engine.contracts.records import utcnow
from provisioner.engine.runtime.wiring import compile_planner
from provisioner.engine.store import Store
from provisioner.engine.store.approvals import entry
from provisioner.rules.approvals import approvers
from provisioner.rules.groups import ManagedGroups

RequestKind = Literal["provision", "retry", "access"]


class RequestReceipt(BaseModel):
    """What the caller is told: the request, its state and who must approve it."""

    id: str
    kind: RequestKind
    worker_id: str | None = None
    target: str | None = None
    groups: list[str] = Field(default_factory=list)
    state: str
    approvers: str = Field(description="who must approve, one sentence a person can read")
    expires_at: datetime


def request_provision_now(
    store: Store, config: Config, worker_id: str, requested_by: str, reason: str | None = None
) -> RequestReceipt:
    """Ask that `worker_id` be re-planned now. LookupError: no such worker."""
    person, worker = _person(store, worker_id)
    return _ask(store, config, Kind.provision, person, worker, None, [], "provision", requested_by, reason)


def request_retry(
    store: Store,
    config: Config,
    requested_by: str,
    worker: str | None = None,
    target: str | None = None,
    reason: str | None = None,
) -> RequestReceipt:
    """Ask that failures (of one worker, one target, or both) be retried. LookupError: none match;
    ValueError: neither worker nor target given."""
    if not (worker or target):
        raise ValueError("name a worker, a target, or both, whose failed writes to retry")
    if not store.failures.all(target=target, worker_id=worker):
        whose = " in ".join(x for x in (worker, target) if x)
        raise LookupError(f"no failed write of {whose} to retry")
    record = (store.identities.person(worker) or store.snapshots.get(worker)) if worker else None
    key = f"retry|{worker or '*'}|{target or '*'}"
    return _ask(store, config, Kind.retry, worker, record, target, [], key, requested_by, reason)


def request_access(
    store: Store,
    config: Config,
    worker_id: str,
    target: str,
    requested_by: str,
    groups: list[str] | None = None,
    reason: str | None = None,
) -> RequestReceipt:
    """Ask that `worker_id` get an account (and `groups`) in `target`. LookupError: no such worker
    or target; ValueError: a group the target cannot hold, or a leaver."""
    if not config.approvals.requests.access:
        raise ValueError("access outside the policies cannot be requested here (approvals.requests.access: false)")
    if target not in {t.name for t in config.targets}:
        raise LookupError(f"no target {target!r} in the config")
    person, worker = _person(store, worker_id)
    if worker.status is WorkerStatus.terminated:
        raise ValueError(f"{person} has left (status terminated): a leaver gets no access")
    wanted = sorted({g.strip() for g in groups or [] if g.strip()})
    managed = ManagedGroups.of(compile_planner(config).policies, target, config.target(target).manage_groups)
    if unknown := [g for g in wanted if not managed(g)]:
        raise ValueError(
            f"{target} holds no group {', '.join(unknown)} the engine manages (manage_groups): "
            "only groups a policy can grant there, or those listed, can be requested"
        )
    key = grant_key("access", target, wanted)
    # An app whose every grant waits for its own approver (targets[].approval) is theirs to open,
    # outside the policies too: the approver of requests in general does not stand in for them.
    rule = config.target(target).approval or config.approvals.requests
    return _ask(store, config, Kind.access, person, worker, target, wanted, key, requested_by, reason, rule)


def _person(store: Store, worker_id: str) -> tuple[str, Worker]:
    """The person a worker id is (a record of a person with several: the person) and their record."""
    person = store.identities.person_of(worker_id)
    worker = store.identities.person(person) or store.snapshots.get(worker_id)
    if worker is None:
        raise LookupError(f"no worker {worker_id!r} in the store")
    return person, worker


def _ask(
    store: Store,
    config: Config,
    kind: Kind,
    worker_id: str | None,
    worker: Worker | None,
    target: str | None,
    groups: list[str],
    key: str,
    requested_by: str,
    reason: str | None,
    rule: ApprovalRule | None = None,
) -> RequestReceipt:
    requested_by = requested_by.strip()
    if not requested_by:
        raise ValueError("say who asks (requested_by): the log names them with the request")
    rule = rule or config.approvals.requests
    who = approvers(rule.describe, worker)  # ValueError before anything is kept: nobody could decide it
    if worker is not None and _only_themselves(config, rule.describe, worker.id):
        raise ValueError(
            f"only {who} may approve this, and that is {worker.id} themselves: nobody decides their own "
            "access (set approvals.requests.by to name someone else)"
        )
    now = utcnow()
    request_id = secrets.token_hex(6)
    asked = ApprovalRequest(
        id=request_id,
        kind=kind,
        worker_id=worker_id,
        target=target,
        key=key,
        account=kind is Kind.access,
        groups=groups,
        policy=f"{ACCESS_POLICY}{request_id}" if kind is Kind.access else "",
        rule=rule.describe,
        reason_required=rule.reason_required,
        requested_at=now,
        expires_at=now + timedelta(seconds=rule.expires_after),
        state=ApprovalState.pending,
        requested_by=requested_by,
        request_reason=(reason or "").strip() or None,
        access_for=config.approvals.requests.access_for if kind is Kind.access else None,
    )
    with store.unit() as s:
        kept = store.approvals.ask(s, asked)
        if kept.id == request_id:
            said = f"requested by {requested_by}" + (f": {asked.request_reason}" if asked.request_reason else "")
            store.log.append([entry(kept, "approval_requested", "skipped", f"{kept.asks}; {said}")], s)
    return RequestReceipt(
        id=kept.id,
        kind=kind.value,
        worker_id=kept.worker_id,
        target=kept.target,
        groups=kept.groups,
        state=kept.state.value,
        approvers=who,
        expires_at=kept.expires_at,
    )


def _only_themselves(config: Config, rule: str, person: str) -> bool:
    """Whether every approver a `people:` rule names is `person` (by worker id, or a token of theirs):
    such a request would wait for nobody and expire."""
    if not rule.startswith("people:"):
        return False
    persons = {t.name: t.person for t in config.api.tokens}
    return all((persons.get(name) or name) == person for name in rule.removeprefix("people:").split(","))
