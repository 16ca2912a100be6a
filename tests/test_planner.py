from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioner.engine.config import PolicyConfig
from provisioner.engine.contracts.events import change_event, removal_event
from provisioner.engine.contracts.models import ActionKind, Worker
from provisioner.engine.contracts.records import Link
from provisioner.rules.planner import Planner, TargetSpec
from provisioner.rules.policy import PolicySet

pytestmark = pytest.mark.fast

MAPPING = {"userName": "{{ worker.work_email }}", "title": "{{ worker.title or '' }}"}


def planner(on_terminate: str = "disable", **leaving) -> Planner:
    policies = [
        PolicyConfig.model_validate(
            {
                "name": "staff",
                "when": "worker.employment_type == 'full_time'",
                "grant": [{"target": "app", "groups": ["dept-{{ worker.department | slug }}"]}],
            }
        ),
    ]
    return Planner(PolicySet.compile(policies, ["app"]), [TargetSpec.compile("app", on_terminate, MAPPING, **leaving)])


def ada(**kw) -> Worker:
    base = dict(
        id="hr:1",
        source="hr",
        remote_id="1",
        work_email="ada@x.com",
        title="Eng",
        department="Research & Development",
        employment_type="full_time",
        status="active",
    )
    return Worker(**{**base, **kw})


def link(**kw) -> Link:
    base = dict(
        worker_id="hr:1",
        target="app",
        account_id="u1",
        active=True,
        attributes={"userName": "ada@x.com", "title": "Eng"},
        groups=["dept-research-development"],
    )
    return Link(**{**base, **kw})


def test_new_hire_in_scope_creates_with_groups_and_reason():
    actions = planner().plan(change_event("hr", None, None, ada()), {})
    assert [a.action for a in actions] == [ActionKind.create, ActionKind.add_groups]
    assert actions[0].attributes == {"userName": "ada@x.com", "title": "Eng"}
    assert actions[1].groups == ["dept-research-development"]
    assert actions[1].reason.endswith("groups granted: dept-research-development")
    assert actions[0].policy == "staff"
    assert actions[0].reason == "in scope of policy staff; new hire"


def test_change_updates_only_the_changed_attribute():
    before, after = ada(), ada(title="Staff Eng")
    actions = planner().plan(change_event("hr", before, before.content_hash(), after), {"app": link()})
    assert [(a.action, a.attributes) for a in actions] == [(ActionKind.update, {"title": "Staff Eng"})]
    assert "title changed" in actions[0].reason


def test_department_move_swaps_groups_removal_first():
    before, after = ada(), ada(department="Sales")
    actions = planner().plan(change_event("hr", before, before.content_hash(), after), {"app": link()})
    assert [(a.action, a.groups) for a in actions] == [
        (ActionKind.remove_groups, ["dept-research-development"]),
        (ActionKind.add_groups, ["dept-sales"]),
    ]


def test_termination_disables_or_deletes():
    before, after = ada(), ada(status="terminated")
    event = change_event("hr", before, before.content_hash(), after)
    # the safe default: a disabled leaver keeps none of the managed groups
    actions = planner().plan(event, {"app": link()})
    assert [(a.action, a.groups) for a in actions] == [
        (ActionKind.disable, []),
        (ActionKind.remove_groups, ["dept-research-development"]),
    ]
    assert [a.action for a in planner("delete").plan(event, {"app": link()})] == [ActionKind.delete]
    # already disabled, groups gone: nothing more to do
    assert planner().plan(event, {"app": link(active=False, groups=[])}) == []
    # disabled earlier by a version that kept the groups: they go now
    kept = planner().plan(event, {"app": link(active=False)})
    assert [a.action for a in kept] == [ActionKind.remove_groups]


def test_remove_groups_false_keeps_the_groups_of_a_disabled_leaver():
    before, after = ada(), ada(status="terminated")
    event = change_event("hr", before, before.content_hash(), after)
    actions = planner(remove_groups=False).plan(event, {"app": link()})
    assert [a.action for a in actions] == [ActionKind.disable]


def test_leaving_scope_follows_its_own_setting_or_on_terminate():
    before, after = ada(), ada(employment_type="contractor")
    event = change_event("hr", before, before.content_hash(), after)
    default = planner().plan(event, {"app": link()})
    assert [a.action for a in default] == [ActionKind.disable, ActionKind.remove_groups]
    keep = planner(out_of_scope=("disable", False)).plan(event, {"app": link()})
    assert [a.action for a in keep] == [ActionKind.disable]
    # terminated people still follow on_terminate
    fired = change_event("hr", before, before.content_hash(), ada(status="terminated"))
    assert [a.action for a in planner("delete", out_of_scope=("disable", False)).plan(fired, {"app": link()})] == [
        ActionKind.delete
    ]


def test_rehire_enables_the_old_account():
    before, after = ada(status="terminated"), ada()
    actions = planner().plan(change_event("hr", before, before.content_hash(), after), {"app": link(active=False)})
    assert [a.action for a in actions] == [ActionKind.enable]


def test_out_of_policy_and_removed_workers_are_deprovisioned():
    before, after = ada(), ada(employment_type="contractor")
    actions = planner().plan(change_event("hr", before, before.content_hash(), after), {"app": link(groups=[])})
    assert [a.action for a in actions] == [ActionKind.disable]
    assert "no policy grants this target" in actions[0].reason
    removed = planner().plan(removal_event("hr", before, before.content_hash()), {"app": link(groups=[])})
    assert [a.action for a in removed] == [ActionKind.disable]
    assert "removed from the source" in removed[0].reason


def test_event_ids_are_deterministic_and_distinct_across_cycles():
    w = ada()
    assert change_event("hr", None, None, w).id == change_event("hr", None, None, w).id
    term = ada(status="terminated")
    first = change_event("hr", w, w.content_hash(), term)
    rehired = change_event("hr", term, term.content_hash(), w)
    second = change_event("hr", w, rehired.data.worker.content_hash(), term)
    assert first.id == second.id  # same previous and same content: a true re-poll
    assert first.type.value == "worker.terminated" and rehired.type.value == "worker.rehired"


def test_references_are_the_people_the_mapping_names_so_they_load_before_planning():
    manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
    spec = TargetSpec.compile("app", "disable", {**MAPPING, manager: "{{ worker.manager_id or '' }}"})
    p = Planner(PolicySet.compile([], ["app"]), [spec])
    now = datetime.now(UTC)
    assert p.references(
        [ada(manager_id="hr:7"), ada(id="hr:2", remote_id="2", manager_id="hr:7"), ada(id="hr:3", remote_id="3")], now
    ) == {"hr:7"}
    assert planner().references([ada(manager_id="hr:7")], now) == set()  # a mapping without references
    accounts = {("hr:7", "app"): "u7"}
    asked: list[tuple[str, str]] = []

    def account_of(worker_id: str, target: str) -> str | None:
        asked.append((worker_id, target))
        return accounts.get((worker_id, target))

    assert spec.render(ada(manager_id="hr:7"), now, account_of)[manager] == "u7"
    assert asked == [("hr:7", "app")]  # exactly what `references` named
