from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.config import ConfigError, load_config
from provisioner.sources import settings_problems

pytestmark = pytest.mark.fast

GOOD = """\
sources:
  - name: hr
    type: file
    path: people.csv
targets:
  - name: app
    type: scim
    base_url: ${SCIM_URL}
    token: ${SCIM_TOKEN}
policies:
  - name: all
    when: "worker.status == 'active'"
    grant:
      - target: app
"""


def test_env_references_are_expanded_and_secrets_hidden(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SCIM_URL", "http://scim.example")
    monkeypatch.setenv("SCIM_TOKEN", "s3cr3t-token")
    file = tmp_path / "c.yaml"
    file.write_text(GOOD)
    config = load_config(file)
    assert config.targets[0].base_url == "http://scim.example"
    assert config.targets[0].token.get_secret_value() == "s3cr3t-token"
    assert "s3cr3t-token" not in repr(config) and "s3cr3t-token" not in config.model_dump_json()


def test_every_problem_is_reported_with_file_line_and_key(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SCIM_URL", raising=False)
    monkeypatch.delenv("SCIM_TOKEN", raising=False)
    file = tmp_path / "c.yaml"
    file.write_text(GOOD.replace("- target: app", "- target: nope").replace("type: scim", "type: scim\n    bogus: 1"))
    with pytest.raises(ConfigError) as caught:
        load_config(file, settings_problems)
    text = str(caught.value)
    assert f"{file}:9: targets[0].base_url: environment variable SCIM_URL is not set" in text
    assert f"{file}:10: targets[0].token: environment variable SCIM_TOKEN is not set" in text
    assert "unknown target 'nope'" in text and f"{file}:15:" in text


def test_default_in_env_reference(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SCIM_URL", raising=False)
    monkeypatch.setenv("SCIM_TOKEN", "t")
    file = tmp_path / "c.yaml"
    file.write_text(GOOD.replace("${SCIM_URL}", "${SCIM_URL:-http://127.0.0.1:8080}"))
    assert load_config(file).targets[0].base_url == "http://127.0.0.1:8080"


def test_a_command_that_needs_no_api_token_runs_without_their_variables(tmp_path: Path, monkeypatch):
    # `failures`, `approvals approve`, `provisioner mcp`: a person or an agent holds one token, not all.
    for name in ("SCIM_URL", "SCIM_TOKEN", "SHARED_TOKEN", "ANA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_TOKEN", "bot-token-0123456789")
    file = tmp_path / "c.yaml"
    api = (
        "api:\n  token: ${SHARED_TOKEN}\n  tokens:\n"
        "    - {name: ana, token: '${ANA_TOKEN}', person: 'hr:1'}\n"
        "    - {name: bot, token: '${BOT_TOKEN}', roles: [agent]}\n"
    )
    file.write_text(GOOD + api)
    config = load_config(file, secrets=False)
    assert config.api.token is None  # unset: it names nobody, never its own literal text
    assert [t.name for t in config.api.tokens] == ["bot"]
    with pytest.raises(ConfigError, match="ANA_TOKEN is not set"):  # the engine itself needs them all
        load_config(file)


def test_validate_command(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SCIM_URL", "http://x")
    monkeypatch.setenv("SCIM_TOKEN", "t")
    file = tmp_path / "c.yaml"
    file.write_text(GOOD)
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "--config", str(file)])
    assert ok.exit_code == 0, ok.output
    file.write_text(GOOD.replace("worker.status == 'active'", "worker.status ==="))
    bad = runner.invoke(app, ["validate", "--config", str(file)])
    assert bad.exit_code == 2
    assert "policy 'all'" in bad.output


def test_example_config_validates():
    runner = CliRunner()
    result = runner.invoke(app, ["validate", "--config", "examples/file-to-scim.yaml"])
    assert result.exit_code == 0, result.output


def test_connector_settings_are_checked_per_source_with_lines(tmp_path: Path):
    file = tmp_path / "c.yaml"
    file.write_text(
        "sources:\n"
        "  - name: ats\n"
        "    type: lever\n"  # line 3: no credentials at all
        "  - name: hr\n"
        "    type: workday\n"
        "    base_url: https://wd3.example/ccx/service/acme/Human_Resources\n"
        "    username: isu@acme\n"
        "    password: x\n"
        "    page_size: 5000\n"  # line 9: over Workday's Count cap
        "  - name: gh\n"
        "    type: greenhouse\n"
        "    api_key: k\n"  # v3 is the default: it needs client credentials
        "  - name: odd\n"
        "    type: peoplesoft\n"  # line 14
        "targets: [{name: app, type: scim, base_url: 'http://x/scim'}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(file, settings_problems)
    found = {(p.line, p.key): p.message for p in caught.value.problems}
    assert "Lever needs credentials" in found[(2, "sources[0]")]
    assert "less than or equal to 999" in found[(9, "sources[1].page_size")]
    assert "needs client_id and client_secret" in found[(10, "sources[2].auth")]
    assert "unknown source type 'peoplesoft'" in found[(14, "sources[3].type")]
