"""Requests a caller who may not act alone makes (provision now, retry, access), on a real store
(SQLite and PostgreSQL): asked and logged with who asked, refused when nobody could decide them,
decided only by the right named approver (never by the one who asked, nor by the person it is
about), and run through the outbox once approved; denied, nothing happens. The access grant as a
plan sees it is here too; its whole flow to a SCIM app is in test_agent_requests_flow.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from provisioner.engine.config import Config, ConfigError, PolicyConfig, load_config
from provisioner.engine.contracts.approvals import AccessGrant, ApprovalState, Approver
from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import ActionKind, Worker
from provisioner.engine.contracts.records import EventOutcome, Link
from provisioner.engine.runtime.agent_requests import request_access, request_provision_now, request_retry
from provisioner.engine.runtime.approvals import NotDecidable, Refused, approver_of, decide, listing
from provisioner.engine.runtime.wiring import compile_planner
from provisioner.engine.store import Store
from provisioner.engine.store.db import insert_new, make_engine
from provisioner.engine.store.migrate import alembic_config
from provisioner.engine.store.tables import ApprovalRow

pytestmark = pytest.mark.fast

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
MIA = Approver(name="mia", person="hr:9")  # hr:1's manager


def config(**requests: Any) -> Config:
    return Config.model_validate(
        {
            "targets": [
                {"name": "wiki", "type": "scim", "base_url": "http://wiki"},
                {"name": "payroll", "type": "scim", "base_url": "http://payroll", "manage_groups": ["pay-*"]},
            ],
            "policies": [{"name": "staff", "grant": [{"target": "wiki", "groups": ["staff"]}]}],
            **({"approvals": {"requests": requests}} if requests else {}),
        }
    )


def ada(**kw: Any) -> Worker:
    base = {"id": "hr:1", "source": "hr", "remote_id": "1", "work_email": "ada@x.com", "manager_id": "hr:9"}
    return Worker(**{**base, **kw})


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", [ada(), ada(id="hr:2", remote_id="2", manager_id=None)])
    yield store
    store.close()


def test_access_is_asked_of_the_manager_decided_by_them_only_and_replans_the_person(store: Store):
    receipt = request_access(store, config(), "hr:1", "payroll", "agent-x", ["pay-users"], "month end close")
    assert (receipt.kind, receipt.state, receipt.groups) == ("access", "pending", ["pay-users"])
    assert receipt.approvers == "hr:9, manager of hr:1"
    assert receipt.expires_at - datetime.now(UTC) > timedelta(days=2, hours=23)  # the default: 3 days
    [listed] = listing(store)
    assert (listed["kind"], listed["requested_by"], listed["request_reason"]) == (
        "access",
        "agent-x",
        "month end close",
    )
    assert listed["asks"] == "access outside the policies: account, pay-users in payroll"
    assert listing(store, kind="retry") == [] and listing(store, kind="access") == [listed]
    with pytest.raises(ValueError, match="kind must be one of grant, provision, retry, access"):
        listing(store, kind="bogus")
    [asked] = store.log.recent("hr:1")
    assert asked.action == "approval_requested" and asked.attributes["requested_by"] == "agent-x"
    # asked again while open: the same request, nothing new kept
    assert request_access(store, config(), "hr:1", "payroll", "agent-y", ["pay-users"]).id == receipt.id
    assert len(store.approvals.list()) == 1

    with pytest.raises(Refused, match="their own access"):
        decide(store, receipt.id, Approver(name="ada", person="hr:1"), approve=True)
    with pytest.raises(Refused, match="their own request"):
        decide(store, receipt.id, Approver(name="agent-x", person="hr:9"), approve=True)
    with pytest.raises(Refused, match="manager, hr:9"):
        decide(store, receipt.id, Approver(name="bob", person="hr:5"), approve=True)
    decided = decide(store, receipt.id, MIA, approve=True, reason="ok")
    assert decided.state is ApprovalState.approved and store.outbox.pending_count() == 1
    assert store.log.recent("hr:1")[-1].action == "approval_approved"
    [key] = store.approvals.approved_keys(["hr:1"])["hr:1"]
    assert AccessGrant.parse(key) == AccessGrant(receipt.id, "payroll", ("pay-users",), "agent-x", "mia")


def test_nobody_approves_what_their_own_agent_asked(store: Store):
    tokens = [
        {"name": "mia", "token": "m" * 20, "person": "hr:9"},
        {"name": "mia-bot", "token": "b" * 20, "roles": ["agent"], "person": "hr:9"},  # Mia's assistant
        {"name": "claude", "token": "c" * 20, "roles": ["agent"]},
    ]
    cfg = Config.model_validate({**config().model_dump(mode="json", exclude={"api"}), "api": {"tokens": tokens}})
    mia = approver_of(cfg, cfg.api.tokens[0])
    assert mia is not None
    mine = request_access(store, cfg, "hr:1", "payroll", "mia-bot", ["pay-users"])
    with pytest.raises(Refused, match="their own request"):
        decide(store, mine.id, mia, approve=True)
    theirs = request_provision_now(store, cfg, "hr:1", "claude")
    assert decide(store, theirs.id, mia, approve=True).state is ApprovalState.approved


def test_access_to_an_app_with_its_own_approver_is_theirs_to_decide(store: Store):
    cfg = config().model_dump(mode="json")
    cfg["targets"][1]["approval"] = {"by": "group:payroll-owners", "reason_required": True}
    receipt = request_access(store, Config.model_validate(cfg), "hr:1", "payroll", "agent-x", ["pay-users"])
    assert receipt.approvers == "a member of approver group payroll-owners"
    with pytest.raises(Refused, match="payroll-owners"):
        decide(store, receipt.id, MIA, approve=True, reason="her manager")  # requests in general: by manager
    owner = Approver(name="olu", person="hr:7", groups=["payroll-owners"])
    with pytest.raises(NotDecidable, match="needs a reason"):
        decide(store, receipt.id, owner, approve=True)
    assert decide(store, receipt.id, owner, approve=True, reason="close").state is ApprovalState.approved


def test_access_requests_refuse_what_cannot_be_given(store: Store):
    with pytest.raises(LookupError, match="no target 'crm'"):
        request_access(store, config(), "hr:1", "crm", "agent-x")
    with pytest.raises(LookupError, match="no worker 'hr:404'"):
        request_access(store, config(), "hr:404", "payroll", "agent-x")
    with pytest.raises(ValueError, match="no group admins the engine manages"):
        request_access(store, config(), "hr:1", "payroll", "agent-x", ["pay-users", "admins"])
    with pytest.raises(ValueError, match="no manager on record"):  # nobody could decide it
        request_access(store, config(), "hr:2", "payroll", "agent-x")
    with pytest.raises(ValueError, match="access: false"):
        request_access(store, config(access=False), "hr:1", "payroll", "agent-x")
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", [ada(status="terminated", termination_date="2026-11-30")])
    with pytest.raises(ValueError, match="has left"):
        request_access(store, config(), "hr:1", "payroll", "agent-x")
    assert store.approvals.list(state=None) == []


def test_provision_now_denied_does_nothing_approved_goes_through_the_outbox(store: Store):
    asked = request_provision_now(store, config(by="people:[zed, ana]"), "hr:2", "agent-x", "stuck onboarding")
    assert asked.approvers == "zed or ana" and asked.target is None
    denied = decide(store, asked.id, Approver(name="zed", person="hr:7"), approve=False, reason="wait for HR")
    assert denied.state is ApprovalState.denied and store.outbox.pending_count() == 0
    again = request_provision_now(store, config(by="people:[zed, ana]"), "hr:2", "agent-x")
    assert again.id != asked.id  # a decided provision request is history: a new one is asked
    decide(store, again.id, Approver(name="ana", person="hr:3"), approve=True)
    assert store.outbox.pending_count() == 1
    with pytest.raises(NotDecidable, match="approved already"):
        decide(store, again.id, Approver(name="ana", person="hr:3"), approve=True)
    assert {e.action for e in store.log.recent("hr:2")} == {
        "approval_requested",
        "approval_denied",
        "approval_approved",
    }
    with pytest.raises(LookupError):
        request_provision_now(store, config(), "hr:404", "agent-x")


def fail(store: Store, worker: str, target: str) -> None:
    event = change_event("hr", None, None, ada(id=worker, remote_id=worker.split(":")[1]))
    outcome = EventOutcome(event.id, event)
    outcome.fail(target, "create", "503 from the app", transient=True)
    with store.unit() as s:
        store.failures.record(s, [outcome])


def test_retry_asks_a_group_and_runs_the_retry_once_approved(store: Store):
    by_group = config(by="group:it-ops")
    with pytest.raises(ValueError, match="name a worker, a target"):
        request_retry(store, by_group, "agent-x")
    with pytest.raises(LookupError, match="no failed write of hr:1 in wiki"):
        request_retry(store, by_group, "agent-x", worker="hr:1", target="wiki")
    fail(store, "hr:1", "wiki")
    with pytest.raises(ValueError, match="no one person"):  # a whole target has no manager to ask
        request_retry(store, config(), "agent-x", target="wiki")
    receipt = request_retry(store, by_group, "agent-x", target="wiki", reason="the app is back")
    assert (receipt.kind, receipt.worker_id, receipt.target) == ("retry", None, "wiki")
    assert receipt.approvers == "a member of approver group it-ops"
    with pytest.raises(Refused, match="approver group 'it-ops'"):
        decide(store, receipt.id, MIA, approve=True)
    decide(store, receipt.id, Approver(name="ops", person="hr:5", groups=["it-ops"]), approve=True)
    assert store.outbox.pending_count() == 1  # hr:1 re-planned from their snapshot
    [failure] = store.failures.all()
    assert failure.next_at is None  # on its way through the engine


def test_access_as_a_plan_sees_it_and_a_leaver_loses_it():
    planner = compile_planner(config())
    grant = AccessGrant("r1", "payroll", ("pay-users",), "agent-x", "mia")
    actions, lasting = planner.plan_gated(change_event("hr", None, None, ada()), {}, NOW, approved={grant.key})
    payroll = [a for a in actions if a.target == "payroll"]
    assert [a.action for a in payroll] == [ActionKind.create, ActionKind.add_groups]
    assert payroll[0].policy == "access:r1" and "access requested by agent-x, approved by mia" in payroll[0].reason
    assert "access-lasts|payroll" in lasting
    held = {"payroll": Link(worker_id="hr:1", target="payroll", account_id="p1", attributes={}, groups=["pay-users"])}
    left = ada(status="terminated", termination_date="2026-11-30")
    actions, lasting = planner.plan_gated(change_event("hr", ada(), None, left), held, NOW, approved={grant.key})
    assert [a.action for a in actions if a.target == "payroll"] == [ActionKind.disable, ActionKind.remove_groups]
    assert "access-lasts|payroll" not in lasting
    # without the grant (void, or never approved) nobody keeps an account no policy gives
    actions, _ = planner.plan_gated(change_event("hr", None, None, ada()), held, NOW)
    assert [a.action for a in actions if a.target == "payroll"] == [ActionKind.disable, ActionKind.remove_groups]


def _pending_at(store_url: str, revision: str, requests: dict[str, str]) -> None:
    """A database migrated up to `revision` holding pending grant requests (id → requested_at)
    for one grant of hr:1, as an older version left them."""
    engine = make_engine(store_url)
    config_ = alembic_config()
    with engine.begin() as conn:
        config_.attributes["connection"] = conn
        command.upgrade(config_, revision)
        for request_id, at in requests.items():
            conn.execute(
                text(
                    "INSERT INTO approval_request (id, worker_id, target, key, account, groups, policy, rule,"
                    " reason_required, requested_at, expires_at, state) VALUES (:id, 'hr:1', 'payroll', 'k', true,"
                    " '[]', 'p', 'manager', false, :at, '2026-12-09 00:00:00', 'pending')"
                ),
                {"id": request_id, "at": at},
            )
    engine.dispose()


def test_the_migration_from_0008_keeps_grants_and_takes_requests(store_url: str):
    _pending_at(store_url, "0008_bulk_snapshots", {"old": "2026-12-01 00:00:00"})
    store = Store(store_url)  # brings it to the head
    try:
        [old] = store.approvals.list()
        assert (old.kind.value, old.requested_by, old.worker_id) == ("grant", None, "hr:1")
        with store.unit() as s:
            store.snapshots.upsert(s, "hr", [ada()])
        fail(store, "hr:1", "wiki")
        assert request_retry(store, config(by="group:ops"), "agent-x", target="wiki").worker_id is None
        access = request_access(store, config(), "hr:1", "payroll", "agent-x").id
    finally:
        store.close()
    engine, config_ = make_engine(store_url), alembic_config()
    with engine.begin() as conn:  # and back: a request about no one target has no place there
        config_.attributes["connection"] = conn
        command.downgrade(config_, "0008_bulk_snapshots")
        kept = conn.execute(text("SELECT id FROM approval_request ORDER BY id")).scalars().all()
    engine.dispose()
    assert kept == sorted(["old", access])


def test_access_for_a_time_ends_then(store: Store):
    timed = config(access_for="30d")
    receipt = request_access(store, timed, "hr:1", "payroll", "agent-x", ["pay-users"])
    approved = decide(store, receipt.id, MIA, approve=True)
    assert approved.access_for == 30 * 86400
    assert approved.expires_at - approved.decided_at == timedelta(days=30)  # from the approval, it says the end
    [key] = store.approvals.approved_keys(["hr:1"])["hr:1"]
    until = AccessGrant.parse(key).until
    assert until == approved.expires_at

    planner = compile_planner(timed)
    now = approved.decided_at
    actions, _ = planner.plan_gated(change_event("hr", None, None, ada()), {}, now, approved={key})
    [ending] = [a for a in actions if a.target == "payroll" and a.effective_at is not None]
    assert (ending.action, ending.effective_at) == (ActionKind.disable, until)  # the scheduler re-plans then
    held = {"payroll": Link(worker_id="hr:1", target="payroll", account_id="p1", attributes={}, groups=["pay-users"])}
    later = until + timedelta(seconds=1)
    event = change_event("hr", None, None, ada())
    actions, lasting = planner.plan_gated(event, held, later, approved={key})
    assert [a.action for a in actions if a.target == "payroll"] == [ActionKind.disable, ActionKind.remove_groups]
    outcome = EventOutcome(event.id, event)
    outcome.lasting = lasting
    with store.unit() as s:
        [void] = store.approvals.settle(s, [outcome], later)
    assert void.action == "approval_void" and "lasted its time" in void.reason
    assert store.approvals.get(receipt.id).state is ApprovalState.void
    assert store.approvals.approved_keys(["hr:1"]) == {}


def test_who_decides_requests_is_checked_with_the_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("approvals:\n  requests:\n    by: boss\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    said = str(caught.value)
    assert "c.yaml:2: approvals.requests" in said and "manager, group:<name> or people" in said
    path.write_text("approvals:\n  requests: {by: 'people:[ana, hr:7]', access_for: 90d}\n")
    requests = load_config(path).approvals.requests
    assert (requests.describe, requests.access_for, requests.expires_after) == (
        "people:ana,hr:7",
        90 * 86400,
        3 * 86400,
    )


def test_a_policy_deny_beats_requested_access():
    denying = config().model_copy(deep=True)
    denying.policies.append(
        PolicyConfig.model_validate(
            {"name": "no-contractors", "when": "worker.employment_type == 'contractor'", "deny": ["payroll"]}
        )
    )
    grant = AccessGrant("r1", "payroll", (), "agent-x", "mia")
    event = change_event("hr", None, None, ada(employment_type="contractor"))
    actions, lasting = compile_planner(denying).plan_gated(event, {}, NOW, approved={grant.key})
    assert [a for a in actions if a.target == "payroll"] == [] and "access-lasts|payroll" not in lasting


def test_a_request_only_its_own_subject_could_approve_is_refused_at_once(store: Store):
    # people:[hr:2], or a token of hr:2's: the request would wait for nobody and expire unseen.
    with pytest.raises(ValueError, match="that is hr:2 themselves"):
        request_provision_now(store, config(by="people:[hr:2]"), "hr:2", "agent-x")
    tokens = {"api": {"tokens": [{"name": "bo", "token": "bo-token-0123456789", "person": "hr:2"}]}}
    with_bo = Config.model_validate({**config(by="people:[bo]").model_dump(mode="json"), **tokens})
    with pytest.raises(ValueError, match="nobody decides their own access"):
        request_access(store, with_bo, "hr:2", "wiki", "agent-x")
    assert store.approvals.list(state=None) == []
    assert request_provision_now(store, config(by="people:[hr:2, ana]"), "hr:2", "agent-x").approvers == "hr:2 or ana"


def test_the_migration_to_0011_keeps_the_oldest_of_duplicate_pending_requests(store_url: str):
    # Two engines recording one grant at once could open it twice before 0011: the later is void now.
    _pending_at(store_url, "0010_trace_context", {"first": "2026-12-01 00:00:00", "again": "2026-12-01 00:00:01"})
    store = Store(store_url)  # brings it to the head
    try:
        states = {r.id: r.state.value for r in store.approvals.list(state=None)}
        assert states == {"first": "pending", "again": "void"}
    finally:
        store.close()


def test_the_store_keeps_one_pending_request_per_thing_asked(store: Store):
    # Two engines recording one grant, or two agents asking at once, each look first and find nothing
    # the other has not committed yet: the unique index on pending requests lets one insert win.
    asked = request_provision_now(store, config(by="people:[zed]"), "hr:1", "agent-x")
    mine = store.approvals.get(asked.id)
    assert mine is not None
    twin = {**mine.model_dump(exclude={"asks"}), "id": "elsewhere", "kind": "provision", "state": "pending"}
    with store.unit() as s:
        assert insert_new(s, ApprovalRow, [ApprovalRow.model_validate(twin).model_dump()], "id") == set()
    assert [r.id for r in store.approvals.list(state="pending")] == [asked.id]
    decide(store, asked.id, Approver(name="zed", person="hr:7"), approve=False)
    with store.unit() as s:  # decided, it is history: the same thing may be asked again
        assert insert_new(s, ApprovalRow, [ApprovalRow.model_validate(twin).model_dump()], "id") == {"elsewhere"}
