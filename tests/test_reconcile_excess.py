"""Reconcile sees excess access (`manage_groups:`) and counts leavers' accounts as `deprovisioned`:
over real HTTP (scim2-server, a fault-injecting proxy) and the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.contracts.models import Account
from provisioner.engine.contracts.records import Link
from provisioner.engine.kit.servers import serve_asgi
from provisioner.reconcile.classify import Desired, classify
from provisioner.rules.groups import ManagedGroups, template_pattern
from tests.conftest import make_config, scim_users
from tests.faultproxy import fault_proxy

runner = CliRunner()
PATCH = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
POLICIES = [
    {"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]},
    {
        "name": "departments",
        "when": "true",
        "grant": [{"target": "app", "groups": ["dept-{{ worker.department | lower }}"]}],
    },
]


def person(i: int, department: str, **kw: str) -> dict[str, str]:
    return {
        "remote_id": str(i),
        "first_name": f"P{i}",
        "last_name": "Lee",
        "work_email": f"p{i}@example.com",
        "department": department,
        "employment_type": "full_time",
        "status": "active",
        **kw,
    }


def setup(tmp_path: Path, target_url: str, people: list[dict[str, str]], **extra: Any) -> tuple[Path, Path]:
    source = tmp_path / "people.json"
    source.write_text(json.dumps(people))
    cfg = make_config(
        f"sqlite:///{tmp_path / 's.db'}",
        target_url,
        {"name": "hr", "type": "file", "path": str(source)},
        policies=POLICIES,
        safety={"max_deprovision_ratio": None},
        **extra,
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps(cfg.model_dump(mode="json", exclude_unset=True)))
    return config, source


def reconciled(config: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["reconcile", "-c", str(config), "--json", *flags])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def groups_of(scim: httpx.Client) -> dict[str, set[str]]:
    """userName → the groups it is a member of, as the app says."""
    names = {u["id"]: u["userName"] for u in scim_users(scim)}
    out: dict[str, set[str]] = {name: set() for name in names.values()}
    for group in scim.get("/Groups", params={"count": 100}).json()["Resources"]:
        for member in group.get("members") or []:
            out[names[member["value"]]].add(group["displayName"])
    return out


def group_id(scim: httpx.Client, name: str) -> str:
    return next(
        g["id"] for g in scim.get("/Groups", params={"count": 100}).json()["Resources"] if g["displayName"] == name
    )


def add_member(scim: httpx.Client, group: str, user: str) -> None:
    value = [{"value": next(u["id"] for u in scim_users(scim) if u["userName"] == user)}]
    operations = [{"op": "add", "path": "members", "value": value}]
    scim.patch(f"/Groups/{group_id(scim, group)}", json=PATCH | {"Operations": operations}).raise_for_status()


def test_a_hand_added_managed_membership_and_a_failed_mover_removal_are_drift_and_fix_removes_them(
    tmp_path, scim_server, scim
):
    proxy = fault_proxy(scim_server.url, share=1.0, kinds=("500",))
    with serve_asgi(proxy) as front:
        config, source = setup(
            tmp_path, front.url, [person(0, "Eng"), person(1, "Eng"), person(2, "Sales")], target={"max_attempts": 1}
        )
        assert runner.invoke(app, ["sync", "-c", str(config)]).exit_code == 0
        assert reconciled(config) == (0, reconciled(config)[1])
        assert groups_of(scim)["p1@example.com"] == {"staff", "dept-eng"}

        # p1 moves to Sales, and the app refuses the removal from dept-eng.
        proxy.fault_paths = (f"/Groups/{group_id(scim, 'dept-eng')}",)
        proxy.open_window()
        source.write_text(json.dumps([person(0, "Eng"), person(1, "Sales"), person(2, "Sales")]))
        assert runner.invoke(app, ["sync", "-c", str(config)]).exit_code == 1
        proxy.close_window()
        assert groups_of(scim)["p1@example.com"] == {"staff", "dept-eng", "dept-sales"}

        # Someone puts p0 into dept-sales by hand, and into a group the engine does not own.
        scim.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "wiki"})
        add_member(scim, "dept-sales", "p0@example.com")
        add_member(scim, "wiki", "p0@example.com")

        code, report = reconciled(config)
        assert code == 2
        drift = {i["worker_id"]: i["details"] for i in report["items"]}
        assert drift == {"hr:0": ["groups not granted: dept-sales"], "hr:1": ["groups not granted: dept-eng"]}

        code, report = reconciled(config, "--fix")
        assert (code, report["items"]) == (0, [])
        after = groups_of(scim)
        assert after["p0@example.com"] == {"staff", "dept-eng", "wiki"}  # what it does not own stays
        assert after["p1@example.com"] == {"staff", "dept-sales"}
        log = json.loads(runner.invoke(app, ["log", "-c", str(config), "--worker", "hr:0", "--json"]).stdout)
        assert (log[-1]["action"], log[-1]["result"]) == ("remove_groups", "success")
        assert "reconcile" in log[-1]["reason"]

        # With an explicit list, only those groups are owned: the wiki is now drift, dept-* not.
        data = json.loads(config.read_text())
        data["targets"][0]["manage_groups"] = ["wiki", "staff"]
        config.write_text(json.dumps(data))
        add_member(scim, "dept-sales", "p0@example.com")
        code, report = reconciled(config)
        assert [(i["worker_id"], i["details"]) for i in report["items"]] == [("hr:0", ["groups not granted: wiki"])]


def test_a_removed_workers_disabled_account_is_deprovisioned_and_never_an_orphan(tmp_path, scim_server, scim):
    config, source = setup(tmp_path, scim_server.url, [person(0, "Eng"), person(1, "Eng"), person(2, "Sales")])
    assert runner.invoke(app, ["sync", "-c", str(config)]).exit_code == 0
    # hr:1 leaves the export altogether; hr:2 is terminated.
    source.write_text(json.dumps([person(0, "Eng"), person(2, "Sales", status="terminated")]))
    assert runner.invoke(app, ["sync", "-c", str(config)]).exit_code == 0
    active = {u["userName"]: u["active"] for u in scim_users(scim)}
    assert active == {"p0@example.com": True, "p1@example.com": False, "p2@example.com": False}

    code, report = reconciled(config)
    assert (code, report["items"]) == (0, [])
    assert report["summary"]["app"] == {"confirmed": 1, "deprovisioned": 2}
    table = runner.invoke(app, ["reconcile", "-c", str(config)])
    assert table.exit_code == 0 and "deprovisioned" in table.stdout

    # An orphan policy acts on accounts nobody owns, never on a leaver's.
    data = json.loads(config.read_text())
    data["reconcile"] = {"actions": {"orphaned": "delete"}}
    config.write_text(json.dumps(data))
    code, report = reconciled(config, "--fix")
    assert code == 0
    assert {u["userName"] for u in scim_users(scim)} == {"p0@example.com", "p1@example.com", "p2@example.com"}

    # A leaver's account enabled again by hand is not settled: it is disabled again.
    user = next(u for u in scim_users(scim) if u["userName"] == "p1@example.com")
    operations = [{"op": "replace", "path": "active", "value": True}]
    scim.patch(f"/Users/{user['id']}", json=PATCH | {"Operations": operations}).raise_for_status()
    code, report = reconciled(config)
    assert [(i["situation"], i["worker_id"]) for i in report["items"]] == [("should_be_disabled", "hr:1")]
    code, report = reconciled(config, "--fix")
    assert (code, report["summary"]["app"]) == (0, {"confirmed": 1, "deprovisioned": 2})


def test_group_templates_compile_to_patterns():
    assert template_pattern("dept-{{ worker.department | slug }}").fullmatch("dept-sales")
    assert not template_pattern("dept-{{ worker.department }}").fullmatch("wiki")
    conditional = template_pattern("{% if worker.team %}team-{{ worker.team }}{% else %}no-team{% endif %}")
    assert conditional.fullmatch("team-red") and conditional.fullmatch("no-team")
    assert not conditional.fullmatch("admins")
    assert ManagedGroups("all")("anything")
    assert ManagedGroups(["app-*"])("app-admins") and not ManagedGroups(["app-*"])("wiki")
    assert not ManagedGroups("granted", ["staff"])("staff-2")


def test_classify_extra_groups_and_departed_workers():
    def account(id_: str, active: bool = True, groups: tuple[str, ...] = ()) -> Account:
        return Account(id=id_, active=active, attributes={"userName": id_}, groups=list(groups))

    def link(worker: str, account_id: str) -> Link:
        return Link(worker_id=worker, target="app", account_id=account_id)

    desired = [
        Desired("w:a", True, groups=["staff"], keys=("a",)),
        Desired("w:b", False, keys=("b",), departed=True),
        Desired("w:c", False, keys=("c",), departed=True),
        Desired("w:d", False, keys=("d",), departed=True),
    ]
    accounts = [account("a", groups=("staff", "dept-x", "wiki")), account("b", active=False), account("c")]
    links = {w: link(w, w[-1]) for w in ("w:a", "w:b", "w:c", "w:d")}
    managed = ManagedGroups("granted", ["staff", "dept-{{ worker.department }}"])
    found = {
        (i.situation.value, i.worker_id): i.details for i in classify("app", desired, accounts, links, managed=managed)
    }
    assert found == {
        ("drifted", "w:a"): ["groups not granted: dept-x"],
        ("deprovisioned", "w:b"): ["worker left, account disabled"],
        ("should_be_disabled", "w:c"): ["worker left, account still active"],
        ("deprovisioned", "w:d"): ["account no longer exists"],
    }
    deleting = classify("app", desired[1:2], accounts[1:2], links, deprovision="delete")
    assert [(i.situation.value, i.details) for i in deleting] == [
        ("should_be_disabled", ["worker left, account not yet deleted"])
    ]
