"""Revocation first and independent, and leavers who keep access as a first-class failure.

A real SCIM server (scim2-server) behind a front that gives it an app's habits: refusing the
enterprise `department` (400 invalidPath, as apps without the enterprise extension answer) and,
for the leaver, refusing to deactivate. The engine runs as an operator runs it: `sync --once`,
`status`, `failures`, `retry`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.config.loader import load_config
from provisioner.engine.kit.servers import scim_server_process, serve_asgi
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.http.metrics import Metrics
from provisioner.engine.store import Store
from tests.conftest import person
from tests.replica_harness import served
from tests.scim_front import Front, scim_error

runner = CliRunner()


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with scim_server_process() as url:
        yield url


def _mentions(body: Any, key: str, value: Any = ...) -> bool:
    """Whether a SCIM write names `key` (as an attribute or a PATCH path), with `value` if given."""
    if isinstance(body, dict):
        for k, v in body.items():
            if (k == key or (k == "path" and str(v).endswith(key))) and value is ...:
                return True
            if k == key and v == value:
                return True
            if k == "path" and str(v).endswith(key) and body.get("value") == value:
                return True
            if _mentions(v, key, value):
                return True
    if isinstance(body, list):
        return any(_mentions(item, key, value) for item in body)
    return False


class Habits:
    """What the app refuses at the moment; the test switches habits on and off."""

    def __init__(self) -> None:
        self.refuse: set[str] = set()

    def __call__(self, method: str, path: str, body: Any, request: Request) -> Response | None:
        if method not in ("PATCH", "PUT") or not path.startswith("/Users/"):
            return None
        if "department" in self.refuse and _mentions(body, "department"):
            return scim_error(400, "attribute department is not supported", "invalidPath")
        if "deactivate" in self.refuse and _mentions(body, "active", False):
            return scim_error(400, "deactivating users is not allowed for this token", "mutability")
        return None


def write_config(path: Path, store_url: str, people: Path, url: str) -> Path:
    grant = [
        {"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]},
        {"name": "eng", "when": "worker.department == 'Engineering'", "grant": [{"target": "app", "groups": ["eng"]}]},
        {"name": "sales", "when": "worker.department == 'Sales'", "grant": [{"target": "app", "groups": ["sales"]}]},
    ]
    config = {
        "store": {"url": store_url},
        "sources": [{"name": "hr", "type": "file", "path": str(people)}],
        "targets": [{"name": "app", "type": "scim", "base_url": url, "max_attempts": 1, "bulk": False}],
        "policies": grant,
    }
    path.write_text(json.dumps(config))
    return path


def members(url: str, group: str) -> set[str]:
    with httpx.Client(base_url=url) as client:
        found = client.get("/Groups", params={"filter": f'displayName eq "{group}"'}).json()["Resources"]
    return {m["value"] for m in found[0].get("members") or []} if found else set()


def account(url: str, external_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=url) as client:
        found = client.get("/Users", params={"filter": f'externalId eq "{external_id}"'}).json()["Resources"]
    assert len(found) == 1, found
    return dict(found[0])


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def gauge(metrics: Metrics, name: str, target: str = "app") -> float | None:
    return metrics.registry.get_sample_value(name, {"target": target})


async def apply_once(config: Any) -> float | None:
    """One poll applied in this process; how many removals of access it confirmed."""
    async with Runtime(config) as runtime:
        await runtime.poll("hr")
        await runtime.wait_idle(timeout=60)
        return runtime.metrics.registry.get_sample_value("provisioner_revocation_seconds_count", {"target": "app"})


def test_a_refused_attribute_never_blocks_revocation_and_a_leaver_who_keeps_access_is_reported(
    store_url: str, upstream: str, tmp_path: Path
):
    habits = Habits()
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(1, department="Engineering"), person(2, department="Engineering")]))
    with serve_asgi(Front(upstream, intercept=habits).app()) as front:
        config_path = write_config(tmp_path / "c.json", store_url, people, front.url)
        first = cli("sync", "-c", str(config_path))
        assert first.exit_code == 0, first.output
        ada = account(upstream, "hr:1")
        assert ada["id"] in members(upstream, "eng")

        # A move to Sales: the app refuses the new department, yet the old group goes, first.
        habits.refuse.add("department")
        people.write_text(json.dumps([person(1, department="Sales"), person(2, department="Engineering")]))
        config = load_config(config_path)
        assert asyncio.run(apply_once(config)) == 1  # the old group, confirmed gone
        assert ada["id"] not in members(upstream, "eng")
        assert ada["id"] in members(upstream, "sales")  # a grant is not held back by the refusal either
        store = Store(store_url)
        [failure] = store.failures.all()
        assert (failure.worker_id, failure.action, failure.state) == ("hr:1", "update", "dead")
        assert "invalidPath" in failure.last_error or "department" in failure.last_error
        assert store.access.not_removed() == []  # the update failed; no access was left behind

        # A termination the app refuses to apply: access not removed, everywhere it is asked.
        habits.refuse = {"deactivate"}
        people.write_text(json.dumps([person(1, department="Sales"), person(2, status="Terminated")]))
        synced = cli("sync", "-c", str(config_path))
        assert synced.exit_code == 1, synced.output
        assert "access not removed" in synced.output and "hr:2" in synced.output
        assert account(upstream, "hr:2")["active"] is True
        status = cli("status", "-c", str(config_path), "--json")
        assert status.exit_code == 1
        [kept] = json.loads(status.stdout)["access_not_removed"]
        bo = account(upstream, "hr:2")
        assert (kept["worker_id"], kept["target"], kept["remains"]) == ("hr:2", "app", [f"account {bo['id']}"])
        assert kept["since"] and "not allowed" in kept["error"]
        listed = {f["worker"]: f for f in json.loads(cli("failures", "-c", str(config_path), "--json").stdout)}
        assert listed["hr:2"]["access_not_removed"] == [f"account {bo['id']}"]
        assert listed["hr:1"]["access_not_removed"] is None
        metrics = Metrics(config, Store(store_url))
        assert gauge(metrics, "provisioner_leavers_with_access") == 1
        answers, console = served(config, "/api/v1/status", "/api/v1/failures", "/")
        api = {"status": answers["/api/v1/status"], "failures": answers["/api/v1/failures"]}
        assert [a["worker_id"] for a in api["status"]["access_not_removed"]] == ["hr:2"]
        assert {f["worker"]: f["access_not_removed"] for f in api["failures"]}["hr:2"] == [f"account {bo['id']}"]
        assert "Access not removed" in console and f"account {bo['id']}" in console

        # The app accepts again: a retry removes the access, and nobody is reported any more.
        habits.refuse = set()
        healed = cli("retry", "-c", str(config_path), "--all")
        assert healed.exit_code == 0, healed.output
        assert account(upstream, "hr:2")["active"] is False
        assert json.loads(cli("status", "-c", str(config_path), "--json").stdout)["access_not_removed"] == []
        assert gauge(metrics, "provisioner_leavers_with_access") == 0
        assert "provisioner_leavers_with_access" in generate_latest(metrics.registry).decode()
