"""What a newcomer meets first, as the README walks them through it: an approver who forgot their
token is told which variable to set, `approvals list` on an 80-column terminal keeps the id they
must type whole, `plan --worker` of an id nobody knows says so as the API and MCP do, and an agent's
receipt says who must approve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app as cli
from provisioner.engine.config import load_config
from provisioner.engine.contracts.models import Worker
from provisioner.engine.runtime.agent_requests import request_provision_now
from provisioner.engine.runtime.mcp.tools import _receipt
from provisioner.engine.runtime.operations import unknown_worker
from provisioner.engine.store import Store

pytestmark = pytest.mark.fast

MIA = "mia-token-0123456789"


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "workers.csv").write_text("remote_id,first_name,work_email\n1,Ada,ada@example.com\n")
    path = tmp_path / "provisioner.json"
    path.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
                "sources": [{"name": "hr", "type": "file", "path": "workers.csv"}],
                "targets": [{"name": "app", "type": "scim", "base_url": "http://127.0.0.1:9"}],
                "policies": [{"name": "all", "grant": [{"target": "app"}]}],
                "api": {"tokens": [{"name": "mia", "token": MIA, "person": "hr:9", "roles": ["approver"]}]},
                "approvals": {"requests": {"by": "people:[mia]"}},
            }
        )
    )
    yield path


def _asked(config: Path) -> str:
    store = Store(load_config(config).store.url)
    try:
        with store.unit() as s:
            store.snapshots.upsert(s, "hr", [Worker(id="hr:1", source="hr", remote_id="1")])
        return request_provision_now(store, load_config(config), "hr:1", "claude", "stuck").id
    finally:
        store.close()


def test_an_approver_without_a_token_is_told_where_it_goes(config: Path):
    request_id = _asked(config)
    out = CliRunner().invoke(
        cli, ["approvals", "approve", request_id, "-c", str(config)], env={"PROVISIONER_TOKEN": None}
    )
    assert out.exit_code == 2 and "set PROVISIONER_TOKEN (or --token)" in out.output
    listed = CliRunner().invoke(cli, ["approvals", "list", "-c", str(config)], env={"COLUMNS": "80"})
    assert listed.exit_code == 0 and request_id in listed.stdout  # whole, not "c00f…"
    decided = CliRunner().invoke(
        cli, ["approvals", "approve", request_id, "-c", str(config)], env={"PROVISIONER_TOKEN": MIA}
    )
    assert decided.exit_code == 0 and "approved by mia" in decided.output, decided.output


def test_plan_of_an_unknown_worker_says_so_as_the_api_does(config: Path):
    unknown = CliRunner().invoke(cli, ["plan", "-c", str(config), "--worker", "1"])
    assert unknown.exit_code == 1
    assert " ".join(unknown.output.split()) == f"error {unknown_worker('1')}"
    known = CliRunner().invoke(cli, ["plan", "-c", str(config), "--worker", "hr:1", "--json"])
    assert known.exit_code == 0 and json.loads(known.stdout)[0]["worker_id"] == "hr:1"


def test_an_agents_receipt_names_who_must_approve():
    said = _receipt({"id": "c00fca2ae3f4", "state": "pending", "approvers": "hr:9, manager of hr:1"})
    assert (
        said == "request c00fca2ae3f4 is pending until hr:9, manager of hr:1 approves it; nothing happens before that"
    )
