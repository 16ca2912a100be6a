"""`provisioner diff`: the access effect of a policy change, checked against what the engine then
does. Real parts: a file source, scim2-server over HTTP, the embedded broker, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.kit.servers import BackgroundServer
from tests.conftest import person, scim_users

runner = CliRunner()

EVERYONE = {"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]}


def engineering(group: str) -> dict[str, Any]:
    return {
        "name": "engineering",
        "when": "worker.department == 'Engineering'",
        "grant": [{"target": "app", "groups": [group]}],
    }


def people(n: int) -> list[dict[str, Any]]:
    departments = ("Engineering", "Sales", "Support")
    return [person(i, department=departments[i % 3], title="Engineer") for i in range(n)]


def write_config(
    path: Path, store_url: str, source: Path, server: str, policies: list[dict[str, Any]], **extra: Any
) -> Path:
    path.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                "sources": [{"name": "hr", "type": "file", "path": str(source)}],
                "targets": [{"name": "app", "type": "scim", "base_url": server}, *extra.pop("targets", [])],
                "policies": policies,
                **extra,
            },
            indent=1,
        )
    )
    return path


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def synced(tmp_path: Path, scim_server: BackgroundServer) -> tuple[Path, Path, str]:
    """A store in the steady state of the base config: 30 people synced to a real SCIM app."""
    source = tmp_path / "people.json"
    source.write_text(json.dumps(people(30)))
    url = f"sqlite:///{tmp_path / 's.db'}"
    base = write_config(tmp_path / "base.yaml", url, source, scim_server.url, [EVERYONE, engineering("eng")])
    result = cli("sync", "-c", str(base))
    assert result.exit_code == 0, result.output
    new = write_config(tmp_path / "new.yaml", url, source, scim_server.url, [EVERYONE, engineering("eng-platform")])
    return base, new, url


def diff_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = cli("diff", *args, "--json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_a_moved_group_lists_exactly_the_people_of_that_department(synced):
    base, new, _ = synced
    code, report = diff_json("-c", str(new), "--base", str(base))
    assert code == 0
    engineers = {f"hr:{i}" for i in range(30) if i % 3 == 0}
    assert report["people_affected"] == len(engineers)
    assert report["counts"] == {"app": {"add_groups": 10, "remove_groups": 10}}
    granted = {(c["worker_id"], c["detail"]) for c in report["changes"] if c["kind"] == "add_groups"}
    revoked = {(c["worker_id"], c["detail"]) for c in report["changes"] if c["kind"] == "remove_groups"}
    assert granted == {(w, "eng-platform") for w in engineers}
    assert revoked == {(w, "eng") for w in engineers}
    assert all(c["policies"] == ["engineering"] for c in report["changes"])
    assert {c["name"] for c in report["changes"]} >= {"P0 Lee", "P3 Lee"}


def test_the_engine_after_the_change_touches_exactly_those_people(synced, scim_server):
    """What diff says is what the engine then finds to do: reconcile under the new config sees drift
    for exactly the people diff named, and after --fix the app holds what diff said it would."""
    base, new, _ = synced
    _, report = diff_json("-c", str(new), "--base", str(base))
    named = {c["worker_id"] for c in report["changes"]}
    found = cli("reconcile", "-c", str(new), "--json")
    assert found.exit_code == 2, found.output  # drift left: the change is not applied yet
    assert {i["worker_id"] for i in json.loads(found.stdout)["items"]} == named

    fixed = cli("reconcile", "-c", str(new), "--fix")
    assert fixed.exit_code == 0, fixed.output
    log = json.loads(cli("log", "-c", str(new), "--json", "--limit", "1000").stdout)
    applied = {e["worker_id"] for e in log if e["action"] == "add_groups" and "eng-platform" in str(e)}
    assert applied == named
    with httpx.Client(base_url=scim_server.url) as client:
        groups = client.get("/Groups", params={"count": 100}).json()["Resources"]
        by_id = {u["id"]: u["externalId"] for u in scim_users(client)}
    members = {g["displayName"]: {by_id[m["value"]] for m in g.get("members", [])} for g in groups}
    assert members["eng-platform"] == named


def test_gates_tests_and_a_population_file(synced, tmp_path):
    """A change that takes the app from everyone outside Engineering: the gates trip (exit 1) and
    say so in the markdown; a failing `tests:` entry of the new config trips too; a pseudonymous
    population file gives the same counts as the store, with no name or email in it."""
    base, new, _ = synced
    config = json.loads(new.read_text())
    config["policies"] = [engineering("eng")]
    expect = {"app": {"in_scope": True}}
    config["tests"] = [{"name": "sales keep the app", "worker": {"department": "Sales"}, "expect": expect}]
    new.write_text(json.dumps(config))

    tripped = cli("diff", "-c", str(new), "--base", str(base), "--markdown", "--fail-on", "deprovisions>5")
    assert tripped.exit_code == 1, tripped.output
    assert "gate tripped: deprovisions&gt;5: 20" in tripped.stdout  # the markdown of ">"
    assert "gate tripped: test sales keep the app: app: expected in_scope true" in tripped.stdout
    assert "**app: accounts disabled (20)**" in tripped.stdout

    skipped = cli("diff", "-c", str(new), "--base", str(base), "--skip-tests", "--fail-on", "revocations>50")
    assert skipped.exit_code == 0, skipped.output
    by_target = cli("diff", "-c", str(new), "--base", str(base), "--skip-tests", "--fail-on", "target:app")
    assert by_target.exit_code == 1 and "target:app: 50 changes in app" in by_target.stdout

    exported = tmp_path / "population.json"
    made = cli("population", "export", "-c", str(base), "--also", str(new), "-o", str(exported))
    assert made.exit_code == 0, made.output
    text = exported.read_text()
    assert "example.com" not in text and "Lee" not in text and '"hr:1"' not in text
    _, from_store = diff_json("-c", str(new), "--base", str(base), "--skip-tests")
    _, from_file = diff_json("-c", str(new), "--base", str(base), "--skip-tests", "--population", str(exported))
    assert from_file["counts"] == from_store["counts"] == {"app": {"disable": 20, "remove_groups": 30}}
    assert {c["worker_id"] for c in from_file["changes"]}.isdisjoint({c["worker_id"] for c in from_store["changes"]})


def test_bad_input_is_one_line_and_exit_2(synced, tmp_path):
    base, new, _ = synced
    for args, said in [
        (["--base-ref", "HEAD~1"], "--base-ref HEAD~1:"),  # not in a git repository
        ([], "--base FILE or --base-ref REF"),
        (["--base", str(base), "--fail-on", "deprovisions>>3"], "give deprovisions>N"),
        (["--base", str(base), "--fail-on", "target:payroll"], "unknown target payroll"),
        (["--base", str(base), "--population", str(tmp_path / "none.json")], "cannot read"),
        (["--base", str(base), "--store", f"sqlite:///{tmp_path / 'none.db'}"], "no store at"),
    ]:
        result = cli("diff", "-c", str(new), *args)
        assert result.exit_code == 2, (args, result.output)
        assert said in result.output and "Traceback" not in result.output, (args, result.output)
    assert not (tmp_path / "none.db").exists()  # diff made no empty store where none was
