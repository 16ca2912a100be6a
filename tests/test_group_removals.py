"""A leaver leaves every group the app lets them leave, whatever one group does: a removal the app
refuses (or that cannot be confirmed) fails alone, reported, and never holds back the removal from
the groups after it. Real parts: scim2-server over HTTP behind a front, the CLI as an operator runs
it, the embedded broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.kit.servers import scim_server_process, serve_asgi
from tests.conftest import person
from tests.scim_front import Front, scim_error

runner = CliRunner()


def _groups_of(upstream: str, account_id: str) -> set[str]:
    groups = httpx.get(f"{upstream}/Groups", params={"count": 100}).json().get("Resources") or []
    return {g["displayName"] for g in groups if account_id in {str(m.get("value")) for m in g.get("members") or []}}


def test_a_leaver_refused_by_one_group_still_leaves_the_others(tmp_path: Path):
    frozen: set[str] = set()  # group names whose members the app refuses to change

    with scim_server_process() as upstream:

        def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
            if method in ("PATCH", "PUT") and path.startswith("/Groups/"):
                if httpx.get(f"{upstream}{path}").json().get("displayName") in frozen:
                    return scim_error(400, "members of this group are managed elsewhere")
            return None

        with serve_asgi(Front(upstream, intercept=intercept).app()) as front:
            people = tmp_path / "people.json"
            config = tmp_path / "provisioner.yaml"
            grant = {"target": "app", "groups": ["all-staff", "finance-admins"]}  # the refused one first
            config.write_text(
                json.dumps(
                    {
                        "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
                        "sources": [{"name": "hr", "type": "file", "path": str(people)}],
                        "targets": [{"name": "app", "type": "scim", "base_url": front.url, "max_attempts": 1}],
                        "policies": [{"name": "everyone", "when": "true", "grant": [grant]}],
                    }
                )
            )
            people.write_text(json.dumps([person(1)]))
            hired = runner.invoke(app, ["sync", "-c", str(config)])
            assert hired.exit_code == 0, hired.output
            account = httpx.get(f"{upstream}/Users").json()["Resources"][0]["id"]
            assert _groups_of(upstream, account) == {"all-staff", "finance-admins"}

            frozen.add("all-staff")
            people.write_text(json.dumps([person(1, status="terminated")]))
            left = runner.invoke(app, ["sync", "-c", str(config)])
            held = _groups_of(upstream, account)
            active = httpx.get(f"{upstream}/Users/{account}").json().get("active")
            failures = runner.invoke(app, ["failures", "-c", str(config)])

    assert left.exit_code == 1, left.output  # not as planned: said so
    assert held == {"all-staff"}, f"the leaver kept {held}"
    assert "all-staff" in failures.output, failures.output
    assert active is False  # the disable stands alone too
