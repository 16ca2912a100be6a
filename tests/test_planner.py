from __future__ import annotations

from provisioner.engine.config import PolicyConfig
from provisioner.engine.contracts.events import change_event, removal_event
from provisioner.engine.contracts.models import ActionKind, Worker
from provisioner.engine.contracts.records import Link
from provisioner.rules.planner import Planner, TargetSpec
from provisioner.rules.policy import PolicySet

MAPPING = {"userName": "{{ worker.work_email }}", "title": "{{ worker.title or '' }}"}


def planner(on_terminate: str = "disable") -> Planner:
    policies = [
        PolicyConfig.model_validate(
            {
                "name": "staff",
                "when": "worker.employment_type == 'full_time'",
                "grant": [{"target": "app", "groups": ["dept-{{ worker.department | slug }}"]}],
            }
        ),
    ]
    return Planner(PolicySet.compile(policies, ["app"]), [TargetSpec.compile("app", on_terminate, MAPPING)])


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
    assert [a.action for a in planner().plan(event, {"app": link()})] == [ActionKind.disable]
    assert [a.action for a in planner("delete").plan(event, {"app": link()})] == [ActionKind.delete]
    # already disabled: nothing more to do
    assert planner().plan(event, {"app": link(active=False)}) == []


def test_rehire_enables_the_old_account():
    before, after = ada(status="terminated"), ada()
    actions = planner().plan(change_event("hr", before, before.content_hash(), after), {"app": link(active=False)})
    assert [a.action for a in actions] == [ActionKind.enable]


def test_out_of_policy_and_removed_workers_are_deprovisioned():
    before, after = ada(), ada(employment_type="contractor")
    actions = planner().plan(change_event("hr", before, before.content_hash(), after), {"app": link()})
    assert [a.action for a in actions] == [ActionKind.disable]
    assert "no policy grants this target" in actions[0].reason
    removed = planner().plan(removal_event("hr", before, before.content_hash()), {"app": link()})
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
