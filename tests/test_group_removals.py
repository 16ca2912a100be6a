"""A leaver leaves every group the app lets them leave, whatever one group does: a removal the app
refuses (or that cannot be confirmed) fails alone, reported, and never holds back the removal from
the groups after it. Real parts: scim2-server over HTTP behind a front, the CLI as an operator runs
it, the embedded broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass
class _App:
    upstream: str  # the server itself: the truth
    config: Path
    people: Path
    frozen: set[str]  # group names whose members the app refuses to change

    def sync(self, *records: dict[str, Any]) -> Any:
        self.people.write_text(json.dumps(list(records)))
        return runner.invoke(app, ["sync", "-c", str(self.config)])

    def account(self) -> str:
        return str(httpx.get(f"{self.upstream}/Users").json()["Resources"][0]["id"])

    def groups_of(self, account_id: str) -> set[str]:
        groups = httpx.get(f"{self.upstream}/Groups", params={"count": 100}).json().get("Resources") or []
        return {g["displayName"] for g in groups if account_id in {str(m.get("value")) for m in g.get("members") or []}}


@contextmanager
def _app(tmp_path: Path) -> Iterator[_App]:
    """scim2-server behind a front refusing (400) any change to the members of a frozen group; a
    policy granting all-staff, then finance-admins (the refused one first)."""
    frozen: set[str] = set()
    with scim_server_process() as upstream:

        def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
            if method in ("PATCH", "PUT") and path.startswith("/Groups/"):
                if httpx.get(f"{upstream}{path}").json().get("displayName") in frozen:
                    return scim_error(400, "members of this group are managed elsewhere")
            return None

        with serve_asgi(Front(upstream, intercept=intercept).app()) as front:
            grant = {"target": "app", "groups": ["all-staff", "finance-admins"]}
            config = tmp_path / "provisioner.yaml"
            config.write_text(
                json.dumps(
                    {
                        "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
                        "sources": [{"name": "hr", "type": "file", "path": str(tmp_path / "people.json")}],
                        "targets": [{"name": "app", "type": "scim", "base_url": front.url, "max_attempts": 1}],
                        "policies": [{"name": "everyone", "when": "true", "grant": [grant]}],
                    }
                )
            )
            yield _App(upstream, config, tmp_path / "people.json", frozen)


def test_a_leaver_refused_by_one_group_still_leaves_the_others(tmp_path: Path):
    with _app(tmp_path) as it:
        hired = it.sync(person(1))
        assert hired.exit_code == 0, hired.output
        account = it.account()
        assert it.groups_of(account) == {"all-staff", "finance-admins"}

        it.frozen.add("all-staff")
        left = it.sync(person(1, status="terminated"))
        held = it.groups_of(account)
        active = httpx.get(f"{it.upstream}/Users/{account}").json().get("active")
        failures = runner.invoke(app, ["failures", "--json", "-c", str(it.config)])
        status = runner.invoke(app, ["status", "--json", "-c", str(it.config)])

    assert left.exit_code == 1, left.output  # not as planned: said so
    assert held == {"all-staff"}, f"the leaver kept {held}"
    assert "group 'all-staff'" in failures.output, failures.output  # named, though the app's 400 does not
    assert "finance-admins" not in failures.output + status.output, "a group left is reported kept"
    assert active is False  # the disable stands alone too


def test_a_group_added_beside_a_refused_one_is_removed_when_the_person_leaves(tmp_path: Path):
    """The hire's all-staff is refused, finance-admins goes through: the link must say so, or the
    leaver's plan (what the link holds) would leave finance-admins behind with nothing reported."""
    with _app(tmp_path) as it:
        it.frozen.add("all-staff")
        hired = it.sync(person(1))
        account = it.account()
        assert hired.exit_code == 1, hired.output
        assert it.groups_of(account) == {"finance-admins"}

        left = it.sync(person(1, status="terminated"))
        held = it.groups_of(account)

    assert held == set(), f"the leaver kept {held}"
    assert left.exit_code == 0, left.output  # disabled and out of every group: as planned


def test_reconcile_finds_a_disabled_leaver_still_in_a_group_and_fix_removes_it(tmp_path: Path):
    """A leaver's disabled account still in a managed group is access that outlived them: reconcile
    reports it (it is not 'deprovisioned'), and --fix takes the group away once the app allows it."""
    with _app(tmp_path) as it:
        assert it.sync(person(1)).exit_code == 0
        account = it.account()
        it.frozen.add("all-staff")
        assert it.sync(person(1, status="terminated")).exit_code == 1
        found = runner.invoke(app, ["reconcile", "--json", "-c", str(it.config)])
        it.frozen.clear()  # the app's owner lets go of the group
        fixed = runner.invoke(app, ["reconcile", "--fix", "-c", str(it.config)])
        held = it.groups_of(account)
        again = runner.invoke(app, ["reconcile", "-c", str(it.config)])

    assert found.exit_code == 2, found.output  # needs attention
    assert "still in groups: all-staff" in found.output, found.output
    assert held == set(), (fixed.output, held)
    assert again.exit_code == 0, again.output
