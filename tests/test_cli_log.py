"""`provisioner log` as an operator reads it: the API's filters, a word when more entries exist,
results coloured by meaning, group names in reasons; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.engine.cli import app
from provisioner.engine.cli.logview import Result, styled
from provisioner.engine.contracts.records import RESULT_TONE, LogEntry, utcnow
from provisioner.engine.store import Store

pytestmark = pytest.mark.fast


def config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"store: {{url: '{store_url}'}}\n"
        "sources: [{name: hr, type: file, path: w.csv}]\n"
        "targets:\n  - {name: app, type: scim, base_url: 'http://127.0.0.1:9/scim', token: '${APP_TOKEN}'}\n"
        "  - {name: wiki, type: scim, base_url: 'http://127.0.0.1:9/scim', token: '${APP_TOKEN}'}\n"
        "policies: [{name: all, grant: [{target: app, groups: [eng]}, {target: wiki}]}]\n"
    )
    return path


def fill(store_url: str) -> None:
    now = utcnow()
    old = [
        LogEntry(time=now - timedelta(days=3), worker_id=f"hr:{i}", target="app", action="create", result="success")
        for i in range(40)
    ]
    recent = [
        LogEntry(worker_id=f"hr:{i}", target="wiki" if i % 5 else "app", action="add_groups", result="success")
        for i in range(20)
    ]
    recent += [
        LogEntry(worker_id="hr:7", target="app", action="retry", result="dead", error="HTTP 400"),
        LogEntry(worker_id="hr:8", target="app", action="retry", result="retrying", error="HTTP 503"),
    ]
    Store(store_url).log.append(old + recent)


def run(*args: str) -> str:
    result = CliRunner().invoke(app, ["log", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_log_filters_as_the_api_has_them_and_says_how_many_more(tmp_path, store_url):
    path = config(tmp_path, store_url)
    fill(store_url)
    shown = run("-c", str(path))
    assert "showing the newest 50 of 62 entries — use --limit 62 for all" in shown
    assert "showing" not in run("-c", str(path), "--limit", "62")
    wiki = run("-c", str(path), "--target", "wiki", "--json")
    assert wiki.count('"target": "wiki"') == 16 and '"target": "app"' not in wiki
    both = run("-c", str(path), "--target", "wiki", "--target", "app", "--since", "2h", "--json")
    assert both.count('"worker_id"') == 22  # the three-day-old creates are left out
    dead = run("-c", str(path), "--result", "dead", "--json")
    assert dead.count('"worker_id"') == 1 and '"hr:7"' in dead
    assert "no entries match these filters" in run("-c", str(path), "--worker", "hr:999")


def test_log_refuses_bad_filters_in_one_line(tmp_path, store_url):
    path = config(tmp_path, store_url)
    runner = CliRunner()
    for args, said in (
        (["--target", "nope"], "unknown target nope (known: app, wiki)"),
        (["--since", "yesterday-ish"], "--since 'yesterday-ish': give an ISO time"),
    ):
        result = runner.invoke(app, ["log", "-c", str(path), *args], env={"COLUMNS": "200"})
        assert result.exit_code == 2 and said in result.output and "Traceback" not in result.output


def test_results_are_coloured_by_meaning_everywhere():
    assert set(Result) == set(RESULT_TONE)
    assert styled("dead") == "[red]dead[/red]" and styled("failure") == "[red]failure[/red]"
    assert styled("retrying") == "[yellow]retrying[/yellow]" and styled("success") == "[green]success[/green]"


def test_the_console_log_page_colours_results_as_the_cli_does():
    from provisioner.engine.runtime.http.console import templates

    rows = [LogEntry(worker_id="hr:1", action="retry", result=r) for r in ("success", "dead", "retrying", "failure")]
    html = templates().get_template("_log_table.html").render(entries=rows)
    for result, tone in (("success", "ok"), ("dead", "bad"), ("retrying", "warn"), ("failure", "bad")):
        assert f'<td class="{tone}">{result}</td>' in html
    assert 'class="ok">dead' not in html
