"""`validate`, `test`, `schema`, `plan` and `explain` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app

pytestmark = pytest.mark.fast

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def test_the_example_policies_pass_their_tests():
    result = runner.invoke(app, ["test", "-c", str(EXAMPLES / "policies.yaml")])
    assert result.exit_code == 0, result.stdout
    assert "11 passed, 0 failed" in result.stdout


def test_a_failing_policy_test_says_why_and_exits_1(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("""\
targets:
  - {name: app, type: scim, base_url: http://x}
policies:
  - name: eng
    when: "worker.department == 'Engineering'"
    grant: [{target: app, groups: [eng]}]
tests:
  - name: sales get the app
    worker: {department: Sales}
    expect: {app: {in_scope: true}}
  - name: engineers are in eng
    worker: {department: Engineering}
    expect: {app: {in_scope: true, groups: [eng]}}
""")
    result = runner.invoke(app, ["test", "-c", str(config)])
    assert result.exit_code == 1
    assert "FAILED sales get the app" in result.stdout
    assert "app: expected in_scope true, got false (no policy grants this target)" in result.stdout
    assert "PASSED engineers are in eng" in result.stdout


def test_validate_reports_every_problem_with_file_and_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("""\
targets:
  - {name: app, type: scim, base_url: http://x, on_leave: sometimes}
policies:
  - name: broken
    when: "worker.department =="
  - name: denies-nothing-known
    deny: [github]
    grant:
      - target: app
        groups: ["{{ worker.department | slug }"]
""")
    result = runner.invoke(app, ["validate", "-c", str(config)])
    assert result.exit_code == 2
    out = " ".join(result.stderr.split())
    assert f"{config}:2: targets[0].on_leave" in out
    assert f"{config}:5: policies[0].when: policy 'broken'" in out
    assert f"{config}:7: policies[1].deny[0]: unknown target 'github'" in out
    assert f"{config}:10: policies[1].grant[0].groups[0]: policy 'denies-nothing-known'" in out


def test_schema_describes_the_policy_language():
    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    assert {"policies", "lifecycle", "safety", "tests", "targets"} <= set(schema["properties"])
    policy = schema["$defs"]["PolicyConfig"]["properties"]
    assert {"when", "grant", "deny", "description"} <= set(policy)


def test_plan_and_explain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    people = tmp_path / "people.csv"
    people.write_text(
        "remote_id,first_name,last_name,work_email,department,employment_type,status,start_date\n"
        "1,Ada,L,ada@x.com,Engineering,full_time,active,\n"
        "2,Bo,M,bo@x.com,Engineering,contractor,pending,2099-01-10\n"
    )
    config = tmp_path / "c.yaml"
    config.write_text(f"""\
store: {{url: "sqlite:///{tmp_path / "s.db"}"}}
sources: [{{name: hr, type: file, path: {people}}}]
targets:
  - {{name: app, type: scim, base_url: "http://127.0.0.1:9"}}
  - {{name: github, type: scim, base_url: "http://127.0.0.1:9"}}
policies:
  - name: eng
    when: "worker.department == 'Engineering'"
    grant: [{{target: app, groups: [eng]}}, {{target: github}}]
  - name: no-contractors
    when: "worker.employment_type == 'contractor'"
    deny: [github]
""")
    actions = json.loads(runner.invoke(app, ["plan", "-c", str(config), "--json"]).stdout)
    assert [(a["worker_id"], a["target"], a["action"]) for a in actions if a["effective_at"] is None] == [
        ("hr:1", "app", "create"),
        ("hr:1", "app", "add_groups"),
        ("hr:1", "github", "create"),
    ]
    deferred = [a for a in actions if a["effective_at"]]
    assert [(a["worker_id"], a["target"], a["action"]) for a in deferred] == [("hr:2", "app", "create")]
    assert deferred[0]["effective_at"].startswith("2099-01-03")  # 7 days before the start date

    # explain needs the worker in the store: a poll without applying puts it there
    import asyncio

    from provisioner.engine.config import load_config
    from provisioner.engine.runtime.usecases.ingest import ingest
    from provisioner.engine.runtime.wiring import Parts

    parts = Parts(load_config(config))
    asyncio.run(ingest(parts.sources["hr"], parts.store))
    result = runner.invoke(app, ["explain", "hr:2", "-c", str(config)])
    assert result.exit_code == 0, result.stdout
    text = " ".join(result.stdout.split())
    assert "github: out of scope — denied by policy no-contractors" in text
    assert "deny no-contractors: worker.employment_type == 'contractor' → true" in text
    assert "app: out of scope — pre-hire: starts 2099-01-10" in text
    data = json.loads(runner.invoke(app, ["explain", "hr:2", "-c", str(config), "--json"]).stdout)
    assert data["targets"]["app"]["policies"] == [
        {"policy": "eng", "when": "worker.department == 'Engineering'", "value": True, "effect": "grant"}
    ]
    assert runner.invoke(app, ["explain", "hr:9", "-c", str(config)]).exit_code == 1
