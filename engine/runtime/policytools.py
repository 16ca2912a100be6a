"""What the policy CLI commands compute: `explain`, `test`, `schema`. Rendering stays in the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from provisioner.engine.config import Config, PolicyTest
from provisioner.engine.contracts.models import Worker
from provisioner.engine.runtime.usecases.identity_manual import describe
from provisioner.engine.runtime.usecases.writeback_plan import explained
from provisioner.engine.runtime.wiring import Parts
from provisioner.rules.policy import PolicySet


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the config file, for editors (yaml-language-server) and CI."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "provisioner config"
    return schema


def worker_for_test(fields: dict[str, Any]) -> Worker:
    """A Worker from the few fields a policy test names; the rest are neutral defaults."""
    data = {"status": "active", **fields}
    remote_id = str(data.pop("remote_id", data.get("id", "1")))
    data.setdefault("source", "test")
    data.setdefault("id", f"{data['source']}:{remote_id}")
    return Worker(remote_id=remote_id, **data)


class Compiled(Protocol):
    """What the policy tests read: the compiled policies (of `Parts`, or of a `Planner` alone)."""

    policies: PolicySet


@dataclass
class PolicyTestOutcome:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def run_policy_tests(config: Config, parts: Compiled, now: datetime | None = None) -> list[PolicyTestOutcome]:
    outcomes = []
    for test in config.tests:
        outcomes.append(_run_one(test, parts, now or datetime.now(UTC)))
    return outcomes


def _run_one(test: PolicyTest, parts: Compiled, now: datetime) -> PolicyTestOutcome:
    outcome = PolicyTestOutcome(test.name)
    try:
        worker = worker_for_test(test.worker)
        entitlements = parts.policies.entitlements(worker, test.now or now)
    except (ValidationError, ValueError) as exc:
        outcome.failures.append(f"could not evaluate: {exc}")
        return outcome
    for target, expected in test.expect.items():
        ent = entitlements[target]
        if ent.in_scope != expected.in_scope:
            outcome.failures.append(
                f"{target}: expected in_scope {str(expected.in_scope).lower()}, "
                f"got {str(ent.in_scope).lower()} ({ent.why})"
            )
        elif expected.groups is not None and sorted(ent.groups) != sorted(expected.groups):
            outcome.failures.append(f"{target}: expected groups {sorted(expected.groups)}, got {sorted(ent.groups)}")
    return outcome


def explain(parts: Parts, worker_id: str, now: datetime | None = None) -> dict[str, Any]:
    """Why this person has or lacks each account: conditions, scope, groups, link, recent log."""
    now = now or datetime.now(UTC)
    joined = describe(parts.store, worker_id)  # a record of a person with several: the person is explained
    worker_id = joined["person"] if joined else worker_id
    worker = parts.store.identities.person(worker_id) or parts.store.snapshots.get(worker_id)
    if worker is None:
        raise LookupError(
            f"no worker {worker_id!r} in the store; run a sync first, or check the id "
            f"(ids look like <source>:<remote id>)"
        )
    matches = parts.policies.matches(worker, now)
    # with the access approved requests give: "access requested by …, approved by …" is a why too
    entitlements = parts.planner.entitlements(worker, now, parts.approved([worker_id]).get(worker_id, ()))
    links = {t: link for (_, t), link in parts.store.links.for_workers([worker_id]).items()}
    log = parts.store.log.recent(worker_id, limit=200)
    deferred = parts.store.schedule.deferred(worker_id)
    waiting = {target: (reference, since) for _, target, reference, since in parts.store.references.waiting(worker_id)}
    requests = [r for r in parts.store.approvals.list(worker_id=worker_id) if r.state in ("pending", "approved")]
    targets = {}
    for name, ent in entitlements.items():
        link = links.get(name)
        targets[name] = {
            "in_scope": ent.in_scope,
            "why": ent.why,
            "groups": ent.groups,
            "policies": [
                {
                    "policy": p.name,
                    "when": p.condition.source,
                    "value": value,
                    "effect": "deny"
                    if name in p.deny
                    else "grant"
                    if any(g.target == name for g in p.grants)
                    else None,
                }
                for p, value in matches
                if name in p.deny or any(g.target == name for g in p.grants)
            ],
            "starts_at": ent.starts_at,
            "enable_at": ent.enable_at,
            "ends_at": ent.ends_at,
            "account": None if link is None else {"id": link.account_id, "active": link.active, "groups": link.groups},
            "scheduled": [
                {"action": d.action, "effective_at": d.effective_at, "reason": d.reason}
                for d in deferred
                if d.target == name
            ],
            # the manager this person names, who has no account here yet: written once they have one
            "waiting_for_manager": waiting[name][0] if name in waiting else None,
            # grants here that wait for a person's approval, or were approved and last
            "approvals": [
                {
                    "id": r.id,
                    "state": r.state.value,
                    "grant": (["account"] if r.account else []) + r.groups,
                    "policy": r.policy,
                    "by": r.rule,
                    "expires_at": r.expires_at,
                    "decided_by": r.decided_by,
                }
                for r in requests
                if r.target == name
            ],
            "log": [
                {"time": e.time, "action": e.action, "result": e.result, "reason": e.error or e.reason}
                for e in log
                if e.target == name
            ][-5:],
        }
    report = {"worker": worker.model_dump(mode="json", exclude_none=True), "targets": targets, "identity": joined}
    if (writeback := explained(parts.writebacks, worker, log)) is not None:
        report["writeback"] = writeback
    return report
