"""Each scoping and lifecycle rule of the policy language, pinned at the planner."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from provisioner.engine.config import LifecycleConfig, PolicyConfig
from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Action, ActionKind, Worker
from provisioner.engine.contracts.records import Link
from provisioner.rules.planner import Planner, TargetSpec
from provisioner.rules.policy import PolicySet

pytestmark = pytest.mark.fast

MAPPING = {"userName": "{{ worker.work_email }}"}
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def planner(
    *, lifecycle: dict | None = None, on_leave: str = "keep", out_of_scope: bool = True, on_terminate: str = "disable"
) -> Planner:
    policies = [
        PolicyConfig.model_validate(p)
        for p in [
            {
                "name": "staff",
                "when": "worker.employment_type in ['full_time', 'part_time', 'contractor']",
                "grant": [{"target": "app", "groups": ["all"]}, {"target": "github", "groups": ["eng"]}],
            },
            {"name": "contractors-no-github", "when": "worker.employment_type == 'contractor'", "deny": ["github"]},
        ]
    ]
    targets = ["app", "github"]
    policy_set = PolicySet.compile(
        policies, targets, LifecycleConfig.model_validate(lifecycle or {}), {t: on_leave for t in targets}
    )
    return Planner(policy_set, [TargetSpec.compile(t, on_terminate, MAPPING, out_of_scope) for t in targets])


def person(**kw) -> Worker:
    base = dict(
        id="hr:1", source="hr", remote_id="1", work_email="ada@x.com", employment_type="full_time", status="active"
    )
    return Worker(**{**base, **kw})


def link(target: str = "app", **kw) -> Link:
    base = dict(
        worker_id="hr:1",
        target=target,
        account_id="u1",
        active=True,
        attributes={"userName": "ada@x.com"},
        groups=["all"] if target == "app" else ["eng"],
    )
    return Link(**{**base, **kw})


def plan(
    p: Planner, worker: Worker, links: dict[str, Link] | None = None, before: Worker | None = None, now: datetime = NOW
) -> list[Action]:
    event = change_event("hr", before, before.content_hash() if before else None, worker)
    return p.plan(event, links or {}, now)


def kinds(actions: list[Action], target: str = "app") -> list[tuple[str, datetime | None]]:
    return [(a.action.value, a.effective_at) for a in actions if a.target == target]


def test_deny_beats_grant():
    actions = plan(planner(), person(employment_type="contractor"))
    assert kinds(actions, "app") == [("create", None), ("add_groups", None)]
    assert kinds(actions, "github") == []
    # and an existing account of a contractor is deprovisioned
    actions = plan(planner(), person(employment_type="contractor"), {"github": link("github")})
    # disabled, and out of the groups the engine gave it (remove_groups, the default since issue 25)
    assert [(a.action, a.reason.split(";")[0]) for a in actions if a.target == "github"] == [
        (ActionKind.disable, "out of scope (denied by policy contractors-no-github)"),
        (ActionKind.remove_groups, "out of scope (denied by policy contractors-no-github)"),
    ]


def test_prehire_outside_the_window_is_scheduled_for_when_it_opens():
    worker = person(status="pending", start_date=date(2026, 12, 14))  # 21 days ahead, window 7
    actions = kinds(plan(planner(), worker))
    assert actions == [("create", datetime(2026, 12, 7, tzinfo=UTC))]


def test_prehire_inside_the_window_creates_disabled_and_enables_on_the_start_date():
    worker = person(status="pending", start_date=date(2026, 11, 27), timezone="Europe/Berlin")
    actions = plan(planner(), worker)
    create = next(a for a in actions if a.target == "app" and a.action is ActionKind.create)
    assert create.attributes["active"] is False and create.effective_at is None
    enable = [a for a in actions if a.target == "app" and a.action is ActionKind.enable]
    assert enable[0].effective_at == datetime(2026, 11, 26, 23, 0, tzinfo=UTC)  # midnight in Berlin
    # prehire_state: enabled creates an active account and schedules nothing
    actions = plan(planner(lifecycle={"prehire_state": "enabled"}), worker)
    assert kinds(actions) == [("create", None), ("add_groups", None)]
    assert "active" not in actions[0].attributes


def test_end_of_day_termination_in_a_non_utc_timezone():
    worker = person(status="terminated", termination_date=date(2026, 11, 23), timezone="America/Los_Angeles")
    p = planner(lifecycle={"terminate_at": "end_of_day"})
    # 15:00 UTC is 07:00 in Los Angeles: still the last working day, access ends at local midnight
    actions = kinds(plan(p, worker, {"app": link()}, before=person()))
    assert actions == [("disable", datetime(2026, 11, 24, 8, 0, tzinfo=UTC))]
    later = datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC)
    assert kinds(plan(p, worker, {"app": link()}, before=person(), now=later)) == [
        ("disable", None),
        ("remove_groups", None),
    ]
    # immediate: the terminated status is enough
    assert kinds(plan(planner(), worker, {"app": link()}, before=person())) == [
        ("disable", None),
        ("remove_groups", None),
    ]


def test_future_dated_termination_of_an_active_worker_is_scheduled():
    worker = person(termination_date=date(2026, 11, 30))
    actions = kinds(plan(planner(on_terminate="delete"), worker, {"app": link()}))
    assert actions == [("delete", datetime(2026, 11, 30, tzinfo=UTC))]


def test_grace_days_delay_deprovisioning():
    worker = person(status="terminated", termination_date=date(2026, 11, 20))
    p = planner(lifecycle={"grace_days": 5})
    assert kinds(plan(p, worker, {"app": link()})) == [("disable", datetime(2026, 11, 25, tzinfo=UTC))]
    assert kinds(plan(p, worker, {"app": link()}, now=NOW + timedelta(days=3))) == [
        ("disable", None),
        ("remove_groups", None),
    ]


def test_rehire_enables_the_old_account_instead_of_creating_one():
    before = person(status="terminated")
    actions = plan(planner(), person(), {"app": link(active=False)}, before=before)
    assert kinds(actions) == [("enable", None)]


def test_on_leave_keep_vs_disable():
    worker = person(status="on_leave")
    assert kinds(plan(planner(on_leave="keep"), worker, {"app": link()}, before=person())) == []
    # disable, never delete, even where terminations delete
    assert kinds(
        plan(planner(on_leave="disable", on_terminate="delete"), worker, {"app": link()}, before=person())
    ) == [("disable", None)]


def test_out_of_scope_without_deprovisioning():
    moved = person(employment_type="intern")  # no policy grants interns anything
    assert kinds(plan(planner(out_of_scope=True), moved, {"app": link()}, before=person())) == [
        ("disable", None),
        ("remove_groups", None),
    ]
    assert kinds(plan(planner(out_of_scope=False), moved, {"app": link()}, before=person())) == []
    # a termination still deprovisions
    gone = person(employment_type="intern", status="terminated")
    assert kinds(plan(planner(out_of_scope=False), gone, {"app": link()}, before=person())) == [
        ("disable", None),
        ("remove_groups", None),
    ]


def test_desired_groups_are_the_union_of_granting_policies():
    policies = [
        PolicyConfig.model_validate(p)
        for p in [
            {
                "name": "a",
                "when": "true",
                "grant": [{"target": "app", "groups": ["all", "dept-{{ worker.department | slug }}"]}],
            },
            {"name": "b", "when": "worker.department == 'R&D'", "grant": [{"target": "app", "groups": ["all", "rnd"]}]},
        ]
    ]
    ents = PolicySet.compile(policies, ["app"]).entitlements(person(department="R&D"), NOW)
    assert ents["app"].groups == ["all", "dept-r-d", "rnd"] and ents["app"].policies == ["a", "b"]
