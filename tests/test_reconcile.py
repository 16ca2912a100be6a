"""Reconciliation over real HTTP: tamper with the SCIM app behind the engine's back, then reconcile."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from tests.conftest import make_config, scim_users
from tests.conftest import person as conftest_person

runner = CliRunner()
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def person(i: int, **kw: str) -> dict[str, str]:
    return conftest_person(i, **{"title": "Engineer", **kw})


def situations(config: Path) -> tuple[int, set[tuple[str, str | None]]]:
    result = runner.invoke(app, ["reconcile", "-c", str(config), "--json"])
    report = json.loads(result.stdout)
    return result.exit_code, {(i["situation"], i["worker_id"]) for i in report["items"]}


def test_tampering_is_reported_by_situation_and_fix_heals_all_but_the_report_only(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(i) for i in range(7)]))
    config = tmp_path / "config.yaml"
    cfg = make_config(
        f"sqlite:///{tmp_path / 's.db'}",
        scim_server.url,
        {"name": "hr", "type": "file", "path": str(people)},
        safety={"max_deprovision_ratio": None},
    )
    config.write_text(
        json.dumps(
            cfg.model_dump(mode="json", exclude_unset=True)
            | {"targets": [{"name": "app", "type": "scim", "base_url": scim_server.url}]}
        )
    )
    assert runner.invoke(app, ["sync", "-c", str(config)]).exit_code == 0
    people.write_text(json.dumps([person(i) for i in range(6)] + [person(6, status="terminated")]))
    assert runner.invoke(app, ["sync", "-c", str(config)]).exit_code == 0
    assert situations(config) == (0, set())

    users = {u["externalId"]: u for u in scim_users(scim)}
    groups = scim.get("/Groups", params={"count": 100}).json()["Resources"]
    staff = next(g for g in groups if g["displayName"] == "staff")
    op = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
    # a mapped attribute changed by hand
    scim.patch(
        f"/Users/{users['hr:0']['id']}",
        json=op | {"Operations": [{"op": "replace", "path": "title", "value": "Hacker"}]},
    ).raise_for_status()
    # a group membership removed
    scim.patch(
        f"/Groups/{staff['id']}",
        json=op | {"Operations": [{"op": "remove", "path": f'members[value eq "{users["hr:1"]["id"]}"]'}]},
    ).raise_for_status()
    # an extra user nobody knows
    scim.post("/Users", json={"schemas": [USER], "userName": "intruder@example.com"}).raise_for_status()
    # a leaver's account enabled again
    scim.patch(
        f"/Users/{users['hr:6']['id']}", json=op | {"Operations": [{"op": "replace", "path": "active", "value": True}]}
    ).raise_for_status()
    # an account deleted
    scim.delete(f"/Users/{users['hr:4']['id']}").raise_for_status()
    # a second account for one person
    scim.post(
        "/Users", json={"schemas": [USER], "userName": "p5.second@example.com", "externalId": "hr:5"}
    ).raise_for_status()

    code, found = situations(config)
    assert code == 2
    assert found == {
        ("drifted", "hr:0"),
        ("drifted", "hr:1"),
        ("orphaned", None),
        ("should_be_disabled", "hr:6"),
        ("missing", "hr:4"),
        ("ambiguous", "hr:5"),
    }

    # an orphan is named as a person finds it in the app: userName, then the app's id
    shown = runner.invoke(app, ["reconcile", "-c", str(config)], env={"COLUMNS": "200"}).stdout
    intruder = next(u for u in scim_users(scim) if u["userName"] == "intruder@example.com")
    assert f"orphaned app - intruder@example.com ({intruder['id']}): matches no worker" in shown

    html = tmp_path / "report.html"
    fixed = runner.invoke(app, ["reconcile", "-c", str(config), "--fix", "--json", "--html", str(html)])
    assert fixed.exit_code == 2  # the report-only situations remain
    after = {(i["situation"], i["worker_id"]) for i in json.loads(fixed.stdout)["items"]}
    assert after == {("orphaned", None), ("ambiguous", "hr:5")}
    assert "intruder" not in html.read_text() or "orphaned" in html.read_text()
    assert "matches no worker" in html.read_text()

    users = {u["userName"]: u for u in scim_users(scim)}
    assert users["p0@example.com"]["title"] == "Engineer"
    assert users["p6@example.com"]["active"] is False
    assert "p4@example.com" in users
    staff = next(
        g for g in scim.get("/Groups", params={"count": 100}).json()["Resources"] if g["displayName"] == "staff"
    )
    assert users["p1@example.com"]["id"] in {m["value"] for m in staff["members"]}
    assert situations(config) == (2, {("orphaned", None), ("ambiguous", "hr:5")})
    log = runner.invoke(app, ["log", "-c", str(config), "--worker", "hr:0", "--json"]).stdout
    assert "reconcile" in json.loads(log)[-1]["reason"]

    # Orphans can be disabled by configuration (still reported: they still match nobody).
    data = json.loads(config.read_text())
    config.write_text(json.dumps(data | {"reconcile": {"actions": {"orphaned": "disable"}}}))
    assert runner.invoke(app, ["reconcile", "-c", str(config), "--fix"]).exit_code == 2
    intruder = next(u for u in scim_users(scim) if u["userName"] == "intruder@example.com")
    assert intruder["active"] is False
    log = json.loads(
        runner.invoke(app, ["log", "-c", str(config), "--worker", f"orphan:{intruder['id']}", "--json"]).stdout
    )
    assert [(e["action"], e["result"]) for e in log] == [("disable", "success")]
