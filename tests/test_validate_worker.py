"""`validate` knows the Worker model: a condition or template naming a field the Worker does not
have is an error at file:line with "did you mean"; `plan` and `explain` say a policy problem in one
line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.kit.templating import Condition, Template, attributes_of

runner = CliRunner()

CONFIG = """\
store:
  url: sqlite:///state.db
sources:
  - name: hr
    type: file
    path: people.json
targets:
  - name: app
    type: scim
    base_url: http://127.0.0.1:9
    mapping:
      userName: "{{ worker.work_email }}"
      title: "{{ worker['titel'] }}"
policies:
  - name: eng
    when: "worker.departmnet == 'Engineering' and worker.in_employment"
    grant:
      - target: app
        groups: ["dept-{{ worker.department | slug }}", "{{ worker.custom.team }}"]
"""


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_attributes_read_from_the_worker():
    assert attributes_of(Condition("worker.a == 'x' and worker['b'] in [worker.a]").tree, "worker") == ["a", "b"]
    assert attributes_of(Template("{{ worker.c | slug }}-{{ now.year }}").tree, "worker") == ["c"]


def test_unknown_worker_fields_are_errors_at_file_line_with_did_you_mean(tmp_path: Path):
    (tmp_path / "people.json").write_text("[]")
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    result = cli("validate", "-c", str(config))
    assert result.exit_code == 2
    lines = [" ".join(line.split()) for line in result.output.split("error ")[1:]]
    assert len(lines) == 2, result.output
    assert lines[0].startswith(f"{config}:13: targets[0].mapping.title:")
    assert "worker has no field 'titel' (did you mean 'title'?)" in lines[0]
    assert lines[1].startswith(f"{config}:16: policies[0].when:")
    assert "worker has no field 'departmnet' (did you mean 'department'?)" in lines[1]
    planned = cli("plan", "-c", str(config))  # every command refuses the same config, in the same words
    assert planned.exit_code == 2 and "did you mean 'department'" in planned.output
    assert "Traceback" not in planned.output + result.output


def test_a_policy_that_fails_for_one_person_is_one_line_in_plan_and_explain(tmp_path: Path):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([{"remote_id": "1", "first_name": "A", "start_date": "2024-01-01"}]))
    config = tmp_path / "c.yaml"
    policy = {"name": "old-timers", "when": "worker.start_date > 5", "grant": [{"target": "app"}]}
    config.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
                "sources": [{"name": "hr", "type": "file", "path": str(people)}],
                "targets": [{"name": "app", "type": "scim", "base_url": "http://127.0.0.1:9"}],
                "policies": [policy],
            }
        )
    )
    assert cli("validate", "-c", str(config)).exit_code == 0  # it compiles; it fails on a date
    planned = cli("plan", "-c", str(config))
    assert planned.exit_code == 1 and isinstance(planned.exception, SystemExit)
    assert "Traceback" not in planned.output and "not supported between" in planned.output
    assert "policy 'old-timers' on hr:1" in " ".join(planned.output.split())
    synced = cli("sync", "-c", str(config))
    assert synced.exit_code == 1 and "Traceback" not in synced.output
    explained = cli("explain", "hr:1", "-c", str(config))
    assert explained.exit_code == 1 and isinstance(explained.exception, SystemExit)
    assert "Traceback" not in explained.output and "policy 'old-timers' on hr:1" in " ".join(explained.output.split())
