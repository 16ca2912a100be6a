"""The config as a new user meets it: every misspelt key in one run, duplicate keys, an empty file,
relative paths from another directory, read-only commands without secrets, a mistyped file name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.config import ConfigError, load_config
from provisioner.sources import settings_paths

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MISSPELT = """\
store:
  url: sqlite:///state.db
engine:
  concurency: 4
sources:
  - name: hr
    type: file
    path: workers.csv
    pol_interval: 5m
targets:
  - name: app
    type: scim
    base_url: http://127.0.0.1:9/scim
    create_grups: false
policies:
  - name: everyone
    grant: [{target: app}]
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner.engine.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def test_validate_reports_every_misspelt_key_in_one_run_with_line_and_suggestion(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(MISSPELT)
    result = CliRunner().invoke(app, ["validate", "-c", str(config)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error")]
    assert lines == [
        f"error {config}:4: engine.concurency: unknown key 'concurency' (did you mean 'concurrency'?)",
        f"error {config}:9: sources[0].pol_interval: source 'hr': unknown key 'pol_interval' "
        "(did you mean 'poll_interval'?)",
        f"error {config}:14: targets[0].create_grups: target 'app': unknown key 'create_grups' "
        "(did you mean 'create_groups'?)",
    ], result.output


def test_duplicate_keys_are_an_error_naming_both_lines(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "targets: [{name: app, type: scim, base_url: 'http://x'}]\n"
        "policies:\n  - name: a\n    grant: [{target: app}]\n"
        "policies:\n  - name: b\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    [problem] = caught.value.problems
    assert (problem.line, problem.key) == (5, "policies") and "first at line 2" in problem.message


@pytest.mark.parametrize("text", ["", "# nothing here yet\n", "{}\n"])
def test_an_empty_config_is_an_error(tmp_path: Path, text: str):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    result = CliRunner().invoke(app, ["sync", "-c", str(config)])
    assert result.exit_code == 2 and "is empty" in result.output


def test_relative_paths_follow_the_config_file_not_the_current_directory(tmp_path: Path):
    conf, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    conf.mkdir()
    elsewhere.mkdir()
    shutil.copy(EXAMPLES / "workers.csv", conf / "workers.csv")
    (conf / "c.yaml").write_text(
        MISSPELT.replace("  concurency: 4\n", "  concurrency: 4\n")
        .replace("    pol_interval: 5m\n", "")
        .replace("    create_grups: false\n", "")
    )
    result = cli("plan", "-c", "../conf/c.yaml", "--json", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert '"action": "create"' in result.stdout
    assert (conf / "state.db").exists() and not list(elsewhere.iterdir())  # no stray ./provisioner.db


def test_token_files_and_sqlite_paths_resolve_against_the_config(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "store: {url: 'sqlite:///data/state.db?timeout=5'}\n"
        "sources:\n"
        "  - name: ats\n    type: lever\n    base_url: http://x\n"
        "    auth: {type: oauth_refresh_token, token_url: http://x/t, client_id: c, client_secret: s,\n"
        "           refresh_token: r, token_file: secrets/lever.token}\n"
        "  - name: hr\n    type: file\n    path: /abs/workers.csv\n"
    )
    cfg = load_config(config, path_keys=settings_paths)
    assert cfg.store.url == f"sqlite:///{tmp_path}/data/state.db?timeout=5"
    assert cfg.sources[0].settings()["auth"]["token_file"] == str(tmp_path / "secrets" / "lever.token")
    assert cfg.sources[1].settings()["path"] == "/abs/workers.csv"


def test_a_mistyped_config_name_fails_in_one_line_and_creates_nothing(tmp_path: Path):
    for command in ("log", "status"):
        result = cli(command, "-c", "nope.yaml", cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == ["error nope.yaml: cannot read: No such file or directory"]
    assert not list(tmp_path.iterdir())


def test_read_only_commands_need_no_source_or_target_secrets(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "store: {url: 'sqlite:///state.db'}\n"
        "sources:\n"
        "  - name: wd\n    type: workday\n    base_url: https://wd.example/ccx/service/acme/Human_Resources\n"
        "    username: isu@acme\n    password: ${WORKDAY_PASSWORD}\n"
        "targets: [{name: app, type: scim, base_url: 'http://x', token: '${SCIM_TOKEN}'}]\n"
    )
    for command in ("status", "log"):
        result = cli(command, "-c", str(config), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    result = cli("validate", "-c", str(config), cwd=tmp_path)  # what talks to those systems still needs them
    assert result.returncode == 2 and "WORKDAY_PASSWORD is not set" in result.stderr
    assert "SCIM_TOKEN is not set" in result.stderr
