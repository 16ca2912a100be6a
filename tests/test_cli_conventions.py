"""docs/cli.md, enforced: every command of the typer app spells its options the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from provisioner.engine.cli import app
from provisioner.engine.cli.options import JSON_HELP
from provisioner.engine.kit.words import plural

# Commands that read no config: they serve emulators or print what needs none.
NO_CONFIG = {"schema", "demo", "sandbox"}
# Commands that print a table: each takes --json.
TABLES = {
    "sync",
    "plan",
    "log",
    "explain",
    "status",
    "failures",
    "reconcile",
    "quarantine",
    "sources check",
    "targets check",
    "sessions list",
}
# Commands about people or writes: each filters by --worker and --target like the others.
BY_WORKER = {"sync", "plan", "log", "explain", "failures", "retry"}
BY_TARGET = {"plan", "log", "failures", "retry", "reconcile", "targets check"}


def commands() -> dict[str, Any]:
    root = typer.main.get_command(app)
    found: dict[str, Any] = {}
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            found[name] = command
    return found


def is_option(param: Any) -> bool:
    return bool(param.param_type_name == "option")


def option(command: Any, flag: str) -> Any:
    return next((p for p in command.params if is_option(p) and flag in p.opts), None)


ALL = commands()


def test_the_walk_sees_every_command():
    assert {"validate", "sync", "run", "log", "explain", "status", "sources dump", "targets check"} <= set(ALL)


@pytest.mark.parametrize("name", sorted(ALL))
def test_config_is_dash_c_with_env_then_default(name):
    command = ALL[name]
    found = option(command, "--config")
    if name in NO_CONFIG:
        assert found is None
        return
    assert found is not None and "-c" in found.opts, f"{name}: -c/--config"
    assert found.envvar == "PROVISIONER_CONFIG", name
    assert not found.required and Path(found.default) == Path("provisioner.yaml"), name


@pytest.mark.parametrize("name", sorted(ALL))
def test_shared_options_read_the_same(name):
    command = ALL[name]
    json_flag = option(command, "--json")
    if name in TABLES:
        assert json_flag is not None, f"{name} prints a table: it takes --json"
    if json_flag is not None:
        assert json_flag.help == JSON_HELP and json_flag.is_flag, name
    target = option(command, "--target")
    if name in BY_TARGET:
        assert target is not None, f"{name}: --target"
    if target is not None:
        assert target.multiple and target.metavar == "NAME", f"{name}: --target NAME, repeatable"
    if name in BY_WORKER:
        assert option(command, "--worker") is not None, f"{name}: --worker"
    if option(command, "--worker") is not None:
        assert option(command, "--worker").metavar == "ID", f"{name}: --worker ID"
    for param in command.params:
        if is_option(param) and not param.hidden and "--help" not in param.opts:
            assert param.help, f"{name} {param.opts}: every option says what it does"


@pytest.mark.parametrize("name", sorted(ALL))
def test_help_has_no_flag_placeholders_and_rewraps(name):
    command = ALL[name]
    for paragraph in (command.help or "").split("\n\n"):
        assert "\n" not in paragraph.strip(), f"{name}: a hard line break inside a paragraph"
    result = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output, name
    assert max(len(line) for line in result.output.splitlines()) <= 80, name


def test_sync_runs_once_and_still_accepts_once(tmp_path):
    sync = ALL["sync"]
    once = option(sync, "--once")
    assert once is not None and once.hidden, "`sync --once` keeps working for older scripts"
    assert "long-running" in (sync.help or "") and "provisioner run" in (sync.help or "")
    assert "provisioner sync" in (ALL["run"].help or "")
    accepted = CliRunner().invoke(app, ["sync", "--once", "-c", str(tmp_path / "none.yaml")])
    assert accepted.exit_code == 2 and "cannot read" in accepted.output and "No such option" not in accepted.output


def test_explain_takes_worker_as_option_and_as_old_positional(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["explain", "-c", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "--worker" in missing.output


def test_a_missing_default_config_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISIONER_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 2
    assert "-c FILE" in result.output and "PROVISIONER_CONFIG" in result.output
    assert "Traceback" not in result.output


def test_the_config_comes_from_the_environment(tmp_path, monkeypatch):
    config = tmp_path / "elsewhere.yaml"
    config.write_text("sources: []\ntargets: []\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROVISIONER_CONFIG", str(config))
    result = CliRunner().invoke(app, ["validate"], env={"COLUMNS": "200"})  # the path on one line, however long
    assert "elsewhere.yaml" in result.output


def test_plural():
    assert [plural(n, "source") for n in (0, 1, 2)] == ["0 sources", "1 source", "2 sources"]
    assert plural(1, "policy") == "1 policy" and plural(3, "policy") == "3 policies"
    assert plural(2, "entry") == "2 entries" and plural(2, "key") == "2 keys"
    assert plural(1, "person", "people") == "1 person" and plural(5, "person", "people") == "5 people"
