"""Approvals of sensitive grants, in process: the planner gates a grant (and nothing else), the
store asks once per grant and voids what a move ends, decisions check who may decide, expiry
denies. The end-to-end run with a real SCIM app and the console is in test_approvals_flow.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from provisioner.engine.config import ApprovalRule, ConfigError, PolicyConfig, load_config
from provisioner.engine.contracts.approvals import ApprovalRequest, ApprovalState, Approver
from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import ActionKind, Worker
from provisioner.engine.contracts.records import EventOutcome, Link
from provisioner.engine.runtime.approvals import NotDecidable, Refused, decide, listing
from provisioner.engine.runtime.usecases.fire_due import expire_approvals
from provisioner.engine.store import Store
from provisioner.rules.approvals import refusal
from provisioner.rules.planner import Planner, TargetSpec
from provisioner.rules.policy import PolicySet

pytestmark = pytest.mark.fast

MAPPING = {"userName": "{{ worker.work_email }}"}
GATE = {"by": "manager", "expires_after": "2d"}
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def planner(wiki_gate: dict[str, Any] | None = None, gate: dict[str, Any] = GATE) -> Planner:
    """wiki: everyone, staff group; payroll: Finance only, its grant waits for the manager."""
    policies = [
        PolicyConfig.model_validate({"name": "staff", "grant": [{"target": "wiki", "groups": ["staff"]}]}),
        PolicyConfig.model_validate(
            {
                "name": "finance-payroll",
                "when": "worker.department == 'Finance'",
                "grant": [{"target": "payroll", "groups": ["pay-{{ worker.title | slug }}"], "approval": gate}],
            }
        ),
    ]
    gates = {"wiki": ApprovalRule.model_validate(wiki_gate)} if wiki_gate else {}
    specs = [TargetSpec.compile(name, "disable", MAPPING) for name in ("wiki", "payroll")]
    return Planner(PolicySet.compile(policies, ["wiki", "payroll"], approvals=gates), specs)


def ada(**kw: Any) -> Worker:
    base = {"id": "hr:1", "source": "hr", "remote_id": "1", "work_email": "ada@x.com", "title": "Clerk"}
    return Worker(**{**base, "department": "Finance", "manager_id": "hr:9", **kw})


def link(target: str, groups: list[str]) -> Link:
    return Link(
        worker_id="hr:1", target=target, account_id=f"{target}-1", attributes={"userName": "ada@x.com"}, groups=groups
    )


def kinds(actions: list[Any], target: str) -> list[ActionKind]:
    return [a.action for a in actions if a.target == target]


def test_a_gated_grant_waits_while_the_rest_of_the_person_flows():
    actions, lasting = planner().plan_gated(change_event("hr", None, None, ada()), {}, NOW)
    assert kinds(actions, "wiki") == [ActionKind.create, ActionKind.add_groups]
    [waiting] = [a for a in actions if a.target == "payroll"]
    assert waiting.action is ActionKind.pending_approval and waiting.groups == ["pay-clerk"]
    assert waiting.attributes["account"] is True and waiting.attributes["by"] == "manager"
    assert waiting.attributes["expires_after"] == 2 * 86400
    assert lasting == {waiting.attributes["key"]}


def test_an_approved_grant_is_written_and_asks_no_more():
    p = planner()
    _, lasting = p.plan_gated(change_event("hr", None, None, ada()), {}, NOW)
    actions, _ = p.plan_gated(change_event("hr", None, None, ada()), {}, NOW, approved=lasting)
    assert kinds(actions, "payroll") == [ActionKind.create, ActionKind.add_groups]
    assert [a.groups for a in actions if a.action is ActionKind.add_groups and a.target == "payroll"] == [["pay-clerk"]]


def test_removal_never_waits_and_a_move_ends_the_grant():
    """Moved out of Finance: the payroll account goes at once; the grant no longer lasts."""
    before, after = ada(), ada(department="Sales")
    links = {"wiki": link("wiki", ["staff"]), "payroll": link("payroll", ["pay-clerk"])}
    actions, lasting = planner().plan_gated(change_event("hr", before, before.content_hash(), after), links, NOW)
    assert kinds(actions, "payroll") == [ActionKind.disable, ActionKind.remove_groups]
    assert lasting == set()


def test_a_new_gated_group_waits_but_held_groups_stay_and_the_account_is_kept():
    """A title change renders a new payroll group: it is a new grant and waits; the old one is removed
    (removal never waits), and the account stays."""
    before, after = ada(), ada(title="Controller")
    links = {"wiki": link("wiki", ["staff"]), "payroll": link("payroll", ["pay-clerk"])}
    actions, lasting = planner().plan_gated(change_event("hr", before, before.content_hash(), after), links, NOW)
    assert kinds(actions, "payroll") == [ActionKind.remove_groups, ActionKind.pending_approval]
    assert actions[-1].groups == ["pay-controller"] and actions[-1].attributes["account"] is False
    assert len(lasting) == 1


def test_a_leaver_ends_the_grant_and_a_rehire_asks_again_before_enabling():
    left = ada(status="terminated", termination_date="2026-11-30")
    links = {"wiki": link("wiki", ["staff"]), "payroll": link("payroll", ["pay-clerk"])}
    actions, lasting = planner().plan_gated(change_event("hr", ada(), ada().content_hash(), left), links, NOW)
    assert kinds(actions, "payroll") == [ActionKind.disable, ActionKind.remove_groups] and lasting == set()
    kept = {"wiki": link("wiki", []), "payroll": link("payroll", []).model_copy(update={"active": False})}
    actions, lasting = planner().plan_gated(change_event("hr", left, left.content_hash(), ada()), kept, NOW)
    assert kinds(actions, "payroll") == [ActionKind.pending_approval]  # the kept account stays disabled
    assert actions[-1].attributes["account"] is True and len(lasting) == 1


def test_a_rehire_waiting_for_the_account_still_loses_groups_no_longer_granted():
    """A leaver's account kept disabled with its groups (remove_groups: false) and a rehire into
    another title: the account waits for approval, the old group goes now (removal never waits)."""
    left, back = ada(status="terminated", termination_date="2026-11-30"), ada(title="Controller")
    kept = {"payroll": link("payroll", ["pay-clerk"]).model_copy(update={"active": False})}
    actions, _ = planner().plan_gated(change_event("hr", left, left.content_hash(), back), kept, NOW)
    removed, waiting = [a for a in actions if a.target == "payroll"]
    assert (removed.action, removed.groups) == (ActionKind.remove_groups, ["pay-clerk"])
    assert waiting.action is ActionKind.pending_approval and waiting.attributes["account"] is True


def test_a_target_level_gate_covers_every_grant_there():
    actions = planner(wiki_gate={"by": "group:it"}).plan(change_event("hr", None, None, ada()), {}, NOW)
    assert kinds(actions, "wiki") == [ActionKind.pending_approval]
    assert ActionKind.create not in kinds(actions, "wiki")


def test_approval_config_errors_name_the_file_and_line(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "targets:\n  - {name: payroll, type: scim, base_url: 'http://x'}\n"
        "policies:\n  - name: p\n    grant:\n      - target: payroll\n        approval:\n          by: boss\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "c.yaml:7" in str(caught.value) and "manager, group:<name> or people" in str(caught.value)


def planned_outcome(
    worker: Worker, links: dict[str, Link], approved: set[str] = frozenset(), gate: dict[str, Any] = GATE
) -> EventOutcome:
    event = change_event("hr", None, None, worker)
    actions, lasting = planner(gate=gate).plan_gated(event, links, NOW, approved=approved)
    outcome = EventOutcome(event.id, event)
    outcome.lasting = lasting
    outcome.requests = [a for a in actions if a.action is ActionKind.pending_approval]
    return outcome


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    yield store
    store.close()


def ask(store: Store, worker: Worker, gate: dict[str, Any] = GATE) -> str:
    with store.unit() as s:
        logged = store.approvals.settle(s, [planned_outcome(worker, {}, gate=gate)], NOW)
        store.log.append(logged, s)
    [request] = store.approvals.list("pending")
    return request.id


def test_the_store_asks_once_per_grant_and_a_move_voids_it(store: Store):
    worker = ada()
    request_id = ask(store, worker)
    with store.unit() as s:  # planned again (another change): still one request
        assert store.approvals.settle(s, [planned_outcome(worker, {})], NOW) == []
    assert [r.id for r in store.approvals.list()] == [request_id]
    [asked] = store.log.recent("hr:1")
    assert asked.action == "approval_requested" and asked.target == "payroll"
    with store.unit() as s:  # moved out of Finance
        [void] = store.approvals.settle(s, [planned_outcome(ada(department="Sales"), {})], NOW)
    assert void.action == "approval_void"
    assert store.approvals.get(request_id).state is ApprovalState.void
    ask(store, worker)  # back in Finance: asks again
    assert len(store.approvals.list("pending")) == 1


def snapshot(store: Store, worker: Worker) -> None:
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", [worker])


def test_only_the_manager_decides_and_the_log_names_them(store: Store):
    worker = ada()
    snapshot(store, worker)
    request_id = ask(store, worker)
    with pytest.raises(Refused, match="manager, hr:9"):
        decide(store, request_id, Approver(name="bob", person="hr:5"), approve=True)
    with pytest.raises(Refused, match="their own access"):
        decide(store, request_id, Approver(name="ada", person="hr:1"), approve=True)
    decided = decide(store, request_id, Approver(name="mia", person="hr:9"), approve=True, reason="month end")
    assert decided.state is ApprovalState.approved and decided.decided_by == "mia"
    assert store.approvals.approved_keys(["hr:1"]) == {"hr:1": {decided.key}}
    approved = store.log.recent("hr:1")[-1]
    assert approved.action == "approval_approved" and "by mia: month end" in approved.reason
    assert store.outbox.pending_count() == 1  # the person is re-planned through the outbox
    with pytest.raises(NotDecidable, match="approved already"):
        decide(store, request_id, Approver(name="mia", person="hr:9"), approve=False)
    assert listing(store, "approved") == [decided.model_dump(mode="json")]


def test_unanswered_requests_expire_as_denied(store: Store):
    worker = ada()
    snapshot(store, worker)
    request_id = ask(store, worker)
    with store.unit() as s:
        expire_approvals(store, s, NOW + timedelta(days=1))
    assert store.approvals.get(request_id).state is ApprovalState.pending
    with store.unit() as s:
        expire_approvals(store, s, datetime.now(UTC) + timedelta(days=3))
    request = store.approvals.get(request_id)
    assert request.state is ApprovalState.expired and request.decided_by == "expiry"
    assert store.log.recent("hr:1")[-1].action == "approval_expired"
    with pytest.raises(NotDecidable, match="expired"):
        decide(store, request_id, Approver(name="mia", person="hr:9"), approve=True)


def test_a_required_reason_and_other_rules(store: Store):
    worker = ada()
    snapshot(store, worker)
    request_id = ask(store, worker, {"by": "people:[ana, hr:7]", "reason_required": True})
    with pytest.raises(Refused, match="only ana, hr:7 may decide"):
        decide(store, request_id, Approver(name="mia", person="hr:9"), approve=True, reason="x")
    with pytest.raises(NotDecidable, match="needs a reason"):
        decide(store, request_id, Approver(name="ana", person="hr:3"), approve=False, reason="  ")
    denied = decide(store, request_id, Approver(name="zed", person="hr:7"), approve=False, reason="not in payroll")
    assert (denied.state, denied.decided_by, denied.reason) == (ApprovalState.denied, "zed", "not in payroll")
    assert store.outbox.pending_count() == 0  # a denial writes nothing and re-plans nobody
    with store.unit() as s:  # planned again while the reason lasts: a denied grant is not asked again
        assert (
            store.approvals.settle(
                s, [planned_outcome(worker, {}, gate={"by": "people:[ana, hr:7]", "reason_required": True})], NOW
            )
            == []
        )


def test_group_rule_asks_for_the_approver_group():
    request = ApprovalRequest(
        id="r1", worker_id="hr:1", target="wiki", key="k", account=True, policy="p", rule="group:it",
        requested_at=NOW, expires_at=NOW, state=ApprovalState.pending,
    )  # fmt: skip
    assert refusal(request, Approver(name="ana", person="hr:3", groups=["it"]), ada()) is None
    assert (
        refusal(request, Approver(name="bob", person="hr:4", groups=["sales"]), ada())
        == "only members of approver group 'it' may decide"
    )


def test_a_token_that_names_no_person_cannot_approve_what_may_be_its_own_access():
    # ada (hr:1) is in the approver group; her token does not say she is hr:1. Were it enough to be
    # in the group, she could approve her own payroll access.
    request = ApprovalRequest(
        id="r1", worker_id="hr:1", target="payroll", key="k", account=True, policy="p", rule="group:it",
        requested_at=NOW, expires_at=NOW, state=ApprovalState.pending,
    )  # fmt: skip
    for rule in ("group:it", "people:ada,hr:7"):
        why = refusal(request.model_copy(update={"rule": rule}), Approver(name="ada", groups=["it"]), ada())
        assert why is not None and "names no person" in why
