"""`provisioner targets check` and `provisioner sync --worker` over real HTTP: scim2-server, and a
Basic-auth front (tests/scim_front.py) that refuses the wrong password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import yaml
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.kit.servers import scim_server_process, serve_asgi
from provisioner.engine.store import Store
from tests.scim_front import Front


def write_config(tmp_path: Path, targets: list[dict[str, Any]], people: list[dict[str, Any]] | None = None) -> Path:
    grants = [{"target": t["name"], "groups": ["staff"]} for t in targets]
    source = tmp_path / "people.json"
    source.write_text(json.dumps(people or []))
    config = tmp_path / "provisioner.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store": {"url": f"sqlite:///{tmp_path}/p.db"},
                "sources": [{"name": "hr", "type": "file", "path": str(source)}],
                "targets": targets,
                "policies": [{"name": "all", "when": "true", "grant": grants}],
            }
        )
    )
    return config


def test_targets_check_reports_capabilities_and_refused_credentials(tmp_path: Path):
    with scim_server_process() as url:
        front = Front(url, basic=("svc", "right"))
        with serve_asgi(front.app()) as guarded:
            good = {"name": "good", "type": "scim", "base_url": url}
            basic = {"type": "basic", "username": "svc", "password": "right"}
            fronted = {"name": "fronted", "type": "scim", "base_url": guarded.url, "auth": basic}
            ok = CliRunner().invoke(app, ["targets", "check", "--config", str(write_config(tmp_path, [good, fronted]))])
            wrong = {**fronted, "auth": {**basic, "password": "wrong"}}
            refused = CliRunner().invoke(app, ["targets", "check", "--config", str(write_config(tmp_path, [wrong]))])
    assert ok.exit_code == 0, ok.output
    assert "patch yes" in ok.output and "bulk max" in ok.output and "maxResults" in ok.output
    assert "read one of Users" in ok.output and "read one of Groups" in ok.output
    assert refused.exit_code == 1 and "credentials" in refused.output and "401" in refused.output


def test_sync_one_worker_prints_each_step_and_records_it(tmp_path: Path):
    person = {"remote_id": "7", "first_name": "Ada", "last_name": "L", "work_email": "ada@example.com"}
    people = [{**person, "status": "active", "employment_type": "full_time"}]
    with scim_server_process() as url:
        config = write_config(tmp_path, [{"name": "app", "type": "scim", "base_url": url}], people)
        first = CliRunner().invoke(app, ["sync", "--config", str(config), "--worker", "hr:7"])
        again = CliRunner().invoke(app, ["sync", "--config", str(config), "--worker", "hr:7"])
        users = httpx.get(f"{url}/Users").json()["Resources"]
    assert first.exit_code == 0, first.output
    assert "1. source" in first.output and "work_email=ada@example.com" in first.output
    assert "2. plan" in first.output and "create" in first.output
    assert "3. request" in first.output and "success" in first.output and users[0]["id"] in first.output
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert [u["userName"] for u in users] == ["ada@example.com"]
    store = Store(f"sqlite:///{tmp_path}/p.db")
    try:
        assert store.links.for_workers(["hr:7"])[("hr:7", "app")].account_id == users[0]["id"]
        assert "hr:7" in store.snapshots.of_source("hr")
        assert {e.action for e in store.log.recent("hr:7")} >= {"create", "add_groups"}
    finally:
        store.close()
