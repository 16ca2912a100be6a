"""Screens as an operator reads them, after real syncs into a real SCIM server: `status` at 80
columns, what `explain` says a leaver keeps and a leaver's groups really removed, progress lines
when stderr is no terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from provisioner.engine.cli import app
from provisioner.engine.cli.progress import Meter
from tests.conftest import person


def write(tmp_path: Path, store_url: str, scim_url: str, on_terminate: str, people: list[dict]) -> Path:
    data = tmp_path / "people.json"
    data.write_text(json.dumps(people))
    path = tmp_path / "c.yaml"
    path.write_text(
        f"store: {{url: '{store_url}'}}\n"
        f"sources: [{{name: hr, type: file, path: '{data}'}}]\n"
        f"targets: [{{name: app, type: scim, base_url: '{scim_url}', on_terminate: {on_terminate}}}]\n"
        "policies: [{name: all, grant: [{target: app, groups: [staff]}]}]\n"
    )
    return path


def invoke(*args: str, columns: int = 200) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def members(scim: httpx.Client) -> int:
    staff = scim.get("/Groups", params={"filter": 'displayName eq "staff"'}).json()["Resources"][0]
    return len(scim.get(f"/Groups/{staff['id']}").json().get("members") or [])


@pytest.mark.parametrize(
    ("on_terminate", "said", "left"),
    [
        ("disable", "the account is disabled and its managed groups removed", 1),
        ("{action: disable, remove_groups: false}", "keeps its groups (remove_groups: false)", 2),
    ],
)
def test_a_leaver_keeps_what_the_target_says_and_explain_says_so(
    tmp_path, store_url, scim_server, scim, on_terminate, said, left
):
    path = write(tmp_path, store_url, scim_server.url, on_terminate, [person(1), person(2)])
    synced = invoke("sync", "-c", str(path))
    assert "embedded Kafka-protocol broker" not in synced, "the broker's line is for -v"
    assert members(scim) == 2
    assert said in invoke("explain", "--worker", "hr:1", "-c", str(path))
    path = write(tmp_path, store_url, scim_server.url, on_terminate, [person(1, status="terminated"), person(2)])
    invoke("sync", "-c", str(path))
    assert members(scim) == left
    if left == 2:
        assert "keeps groups while disabled: staff" in invoke("explain", "hr:1", "-c", str(path))  # the old form


def test_a_sync_with_nothing_to_change_says_so_instead_of_an_empty_table(tmp_path, store_url, scim_server):
    path = write(tmp_path, store_url, scim_server.url, "disable", [person(1)])
    assert "create" in invoke("sync", "-c", str(path))
    again = invoke("sync", "-c", str(path))
    assert "sync: nothing to change in any app" in again
    assert "┏" not in again and "action" not in again


def test_a_sync_whose_source_could_not_be_read_does_not_say_nothing_was_to_change(tmp_path, store_url, scim_server):
    path = write(tmp_path, store_url, scim_server.url, "disable", [person(1)])
    (tmp_path / "people.json").unlink()
    result = CliRunner().invoke(app, ["sync", "-c", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "nothing to change" not in result.output and "not read: hr" in result.output, result.output


def test_status_reads_whole_at_80_columns(tmp_path, store_url, scim_server):
    path = write(tmp_path, store_url, scim_server.url, "disable", [person(1), person(2)])
    invoke("sync", "-c", str(path))
    shown = invoke("status", "-c", str(path), columns=80)
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80, shown
    row = next(line for line in lines if line.startswith("│ hr"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[:4] == ["hr", "running", "2", "0"]
    assert cells[5] == "full", "a file is read whole on every poll"
    assert len(cells[4]) == len("12-05 20:41") and cells[6] == cells[4], "times whole, never cut"


def test_progress_without_a_terminal_is_a_line_every_few_seconds_with_counts_and_rate():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with Meter(console, "applying", "event", total=1000, every=0) as meter:
        meter.update(250)
        meter.update(1000)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("applying: 250 of 1,000 events, ") and "/s, " in lines[0]
    assert lines[-1].startswith("applying: done, 1,000 of 1,000 events, ")
    quiet = io.StringIO()
    with Meter(Console(file=quiet, force_terminal=False), "listing app", "account", every=3600) as meter:
        meter.update(1)
    assert quiet.getvalue() == "", "short work says nothing"


async def test_pages_read_are_heard_by_whoever_listens():
    from provisioner.engine.kit.paging import OffsetPaging, page_read, paginate

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        return httpx.Response(200, json=list(range(offset, min(offset + 10, 25))))

    heard: list[int] = []
    token = page_read.set(heard.append)
    try:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://hr") as client:
            pages = [p async for p in paginate(client, "/people", OffsetPaging(limit=10, limit_param="n"))]
    finally:
        page_read.reset(token)
    assert heard == [len(p) for p in pages] == [10, 10, 5]


def test_a_sync_that_runs_out_of_time_says_so_in_one_line(tmp_path, store_url, scim_server):
    path = write(tmp_path, store_url, scim_server.url, "disable", [person(i) for i in range(20)])
    result = CliRunner().invoke(app, ["sync", "-c", str(path), "--timeout", "0"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "not everything is applied" in result.output and "still unapplied after 0s" in result.output
    assert "Traceback" not in result.output
    invoke("sync", "-c", str(path))  # the next sync applies the rest
