"""Config problems in the project's own words: one error per missing variable, the fix for an
unquoted ${VAR} in a flow mapping, a warning for $VAR without braces; commands that read only the
sources need none of the targets' secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.engine.cli import app

pytestmark = pytest.mark.fast

BASE = """\
store: {{url: 'sqlite:///{db}'}}
sources:
  - {{name: hr, type: file, path: w.csv}}
targets:
  - name: app
    type: scim
    base_url: {base_url}
    token: ${{APP_TOKEN}}
policies: [{{name: all, grant: [{{target: app}}]}}]
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "w.csv").write_text("remote_id,first_name,last_name,work_email,status\n1,Ada,L,ada@x.com,active\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def test_a_missing_variable_is_one_error_in_our_words(tmp_path, monkeypatch):
    monkeypatch.delenv("APP_TOKEN", raising=False)
    monkeypatch.delenv("APP_URL", raising=False)
    path = write(tmp_path, BASE.format(db=tmp_path / "s.db", base_url="${APP_URL}"))
    result = invoke("validate", "-c", str(path))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert errors == [
        f"error {path}:7: targets[0].base_url: environment variable APP_URL is not set",
        f"error {path}:8: targets[0].token: environment variable APP_TOKEN is not set",
    ]


def test_an_unquoted_variable_in_a_flow_mapping_says_quote_it(tmp_path):
    path = write(tmp_path, "sources: []\ntargets:\n  - {name: app, type: scim, token: ${APP_TOKEN}}\n")
    result = invoke("validate", "-c", str(path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (
        f'error {path}:3: invalid YAML: an unquoted ${{APP_TOKEN}} inside {{...}}: quote it: token: "${{APP_TOKEN}}"'
        in (result.output)
    )


def test_a_variable_without_braces_is_warned_about(tmp_path):
    text = BASE.format(db=tmp_path / "s.db", base_url="http://127.0.0.1:9/$APP_HOST/scim")
    path = write(tmp_path, text)
    result = invoke("validate", "-c", str(path), env={"APP_TOKEN": "t"})
    assert result.exit_code == 0, result.output
    assert (
        f"warning {path}:7: targets[0].base_url: $APP_HOST is sent as written: to use the variable write ${{APP_HOST}}"
        in result.output
    )
    assert "ok" in result.output and "1 source, 1 target, 1 policy" in result.output


def test_sources_dump_and_check_need_no_target_secrets(tmp_path, monkeypatch):
    monkeypatch.delenv("APP_TOKEN", raising=False)
    path = write(tmp_path, BASE.format(db=tmp_path / "s.db", base_url="http://127.0.0.1:9/scim"))
    dumped = invoke("sources", "dump", "hr", "-c", str(path))
    assert dumped.exit_code == 0, dumped.output
    assert '"work_email":"ada@x.com"' in dumped.output and "1 worker, 0 quarantined" in dumped.output
    checked = invoke("sources", "check", "-c", str(path), "--json")
    assert checked.exit_code == 0 and '"ok": true' in checked.output
    # a command that writes to the targets still demands their secrets
    assert invoke("validate", "-c", str(path)).exit_code == 2
