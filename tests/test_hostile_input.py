"""Hostile text from HR systems and a hostile-looking config (issue 24): markup and control
characters are shown literally by the CLI and cannot forge a log line; YAML alias bombs, secrets
under the wrong key and a store that cannot work are each one clear line."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from provisioner.engine.cli.logs import LineFormatter
from provisioner.engine.cli.main import app
from provisioner.engine.cli.safe import shown
from provisioner.engine.config import ConfigError, load_config

HOSTILE = ["[/]", "[link=https://evil.example]click[/link]", "[bold red]x", "a\x1b]0;owned\x07b", "c\x1b[2Jd", "e\nf"]


@pytest.mark.parametrize("text", HOSTILE)
def test_markup_and_control_characters_are_shown_literally(text: str):
    console = Console(record=True, width=200, force_terminal=True)
    console.print(f"[bold]name[/bold] {shown(text)}")
    plain = console.export_text()
    assert "\x1b" not in plain and "\x07" not in plain
    assert plain.count("\n") == 1  # one line, whatever the value held
    assert text.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\n", "\\n") in plain
    rendered = console.export_text(styles=True)
    assert "evil.example" not in rendered or "[link=" in plain  # a link is text, never a hyperlink


def test_a_newline_in_a_remote_id_cannot_forge_a_log_line():
    record = logging.LogRecord(
        "provisioner.poll", logging.INFO, __file__, 1, "worker %s", ("1\n2026 ERROR forged",), None
    )
    line = LineFormatter("%(levelname)s %(message)s").format(record)
    assert line == "INFO worker 1\\n2026 ERROR forged"


def test_explain_shows_markup_from_hr_data_literally(tmp_path: Path):
    people = tmp_path / "people.json"
    name = "[/][link=https://evil.example]Ada[/link]\x1b[31m"
    people.write_text(
        json.dumps([{"remote_id": "1", "first_name": name, "last_name": "L", "start_date": "2024-01-01"}])
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
                "sources": [{"name": "hr", "type": "file", "path": str(people)}],
                "targets": [{"name": "app", "type": "scim", "base_url": "http://127.0.0.1:9"}],
                "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app"}]}],
            }
        )
    )
    cli = CliRunner()
    cli.invoke(app, ["sync", "-c", str(config)])  # the app is unreachable: the snapshot is stored all the same
    explained = cli.invoke(app, ["explain", "hr:1", "-c", str(config)])
    assert explained.exception is None or isinstance(explained.exception, SystemExit), explained.exception
    assert "[/][link=https://evil.example]Ada[/link]\\x1b[31m" in explained.output
    assert "\x1b" not in explained.output


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_a_yaml_alias_bomb_is_one_line_at_once(tmp_path: Path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "\n".join(lines) + "\n"))
    assert time.monotonic() - started < 5
    (problem,) = caught.value.problems
    assert "alias bomb" in problem.message and "\n" not in str(problem)


def test_a_value_from_the_environment_is_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HR_KEY", "sk_live_do_not_print_me")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
        "targets": [{"name": "app", "type": "scim", "base_url": "http://127.0.0.1:9", "rate_limit": "${HR_KEY}"}],
    }
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, json.dumps(config)))
    text = str(caught.value)
    assert "sk_live_do_not_print_me" not in text and "<the value of ${HR_KEY}>" in text and "not a rate" in text


def test_validate_opens_the_store_read_only(tmp_path: Path):
    base = {"targets": [{"name": "app", "type": "scim", "base_url": "http://127.0.0.1:9"}]}
    cli = CliRunner()
    missing_dir = {**base, "store": {"url": f"sqlite:///{tmp_path / 'no' / 'such' / 's.db'}"}}
    refused = cli.invoke(app, ["validate", "-c", str(write(tmp_path, json.dumps(missing_dir)))])
    assert refused.exit_code == 2 and "does not exist" in " ".join(refused.output.split())
    assert "Traceback" not in refused.output
    nowhere = {**base, "store": {"url": "postgresql://nobody@127.0.0.1:1/x"}}
    refused = cli.invoke(app, ["validate", "-c", str(write(tmp_path, json.dumps(nowhere)))])
    assert refused.exit_code == 2 and "cannot open the store" in " ".join(refused.output.split())
    fine = {**base, "store": {"url": f"sqlite:///{tmp_path / 'new.db'}"}}
    assert cli.invoke(app, ["validate", "-c", str(write(tmp_path, json.dumps(fine)))]).exit_code == 0
    assert not (tmp_path / "new.db").exists()  # validate created nothing


def test_every_command_that_reads_the_store_says_in_one_line_that_it_cannot(tmp_path: Path):
    # The read-only commands open the store themselves (no wired engine): the same line as `explain`.
    nowhere = {
        "sources": [{"name": "hr", "type": "file", "path": "p.json"}],
        "store": {"url": "postgresql://nobody@127.0.0.1:1/x"},
    }
    config = str(write(tmp_path, json.dumps(nowhere)))
    for command in (["failures"], ["quarantine"], ["sessions", "list"], ["identity", "list"], ["approvals", "list"]):
        said = CliRunner().invoke(app, [*command, "-c", config])
        assert said.exit_code == 2, (command, said.output)
        assert "cannot open the store" in " ".join(said.output.split()) and "Traceback" not in said.output
