"""Managers in a first sync: reports are re-planned once their manager's account exists (never
forgotten), a bare id as the HR system writes it resolves within the same source, and a manager
who never gets an account is reported once (a log line, `explain`, `status`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.config.loader import load_config
from provisioner.engine.kit.servers import BackgroundServer
from provisioner.engine.store import Store
from tests.conftest import person, scim_users
from tests.replica_harness import served

runner = CliRunner()
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def manager_of(user: dict[str, Any]) -> str | None:
    return (user.get(ENTERPRISE) or {}).get("manager", {}).get("value")


def test_reports_get_their_manager_after_a_first_sync(
    store_url: str, scim_server: BackgroundServer, scim: httpx.Client, tmp_path: Path
):
    people = tmp_path / "people.json"
    # The reports come first and the manager last: their plans run before the manager's account exists.
    reports = [person(i, manager_id="hr:7001") for i in range(1, 9)] + [person(9, manager_id=7001)]
    people.write_text(json.dumps([*reports, person(10, manager_id="hr:4040"), person(7001)]))
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                "engine": {"concurrency": 8},
                "sources": [{"name": "hr", "type": "file", "path": str(people)}],
                "targets": [{"name": "app", "type": "scim", "base_url": scim_server.url, "bulk": False}],
                "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app"}]}],
            }
        )
    )
    first = cli("sync", "-c", str(config))
    assert first.exit_code == 0, first.output
    users = {u["externalId"]: u for u in scim_users(scim)}
    boss = users["hr:7001"]["id"]
    assert {w: manager_of(users[f"hr:{w}"]) for w in range(1, 10)} == {w: boss for w in range(1, 10)}
    assert manager_of(users["hr:10"]) is None  # hr:4040 is nobody here

    # The manager nobody has: reported once, and shown where a person looks.
    said = " ".join(first.output.split())
    assert said.count("hr:10 names hr:4040 (manager) who has no account in app yet: written once they have one") == 1, (
        said
    )
    explained = json.loads(cli("explain", "hr:10", "-c", str(config), "--json").stdout)
    assert explained["targets"]["app"]["waiting_for_manager"] == "hr:4040"
    assert "manager hr:4040 has no account here yet" in cli("explain", "hr:10", "-c", str(config)).stdout
    assert json.loads(cli("status", "-c", str(config), "--json").stdout)["waiting_for_manager"] == 1
    answers, page = served(load_config(config), "/api/v1/workers/hr:10", "/workers/hr:10")
    assert answers["/api/v1/workers/hr:10"]["targets"]["app"]["waiting_for_manager"] == "hr:4040"
    assert "manager hr:4040 has no account here yet" in page
    assert [w[:3] for w in Store(store_url).references.waiting()] == [("hr:10", "app", "hr:4040")]

    # The manager joins: the report is re-planned and gets them; nobody waits any more.
    people.write_text(json.dumps([*reports, person(10, manager_id="hr:4040"), person(7001), person(4040)]))
    second = cli("sync", "-c", str(config))
    assert second.exit_code == 0, second.output
    users = {u["externalId"]: u for u in scim_users(scim)}
    assert manager_of(users["hr:10"]) == users["hr:4040"]["id"]
    assert Store(store_url).references.waiting() == []
    assert json.loads(cli("status", "-c", str(config), "--json").stdout)["waiting_for_manager"] == 0
    assert "no account in" not in second.output
