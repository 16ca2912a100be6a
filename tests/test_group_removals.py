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
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


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


def test_a_leaver_refused_by_two_groups_is_reported_in_both(tmp_path: Path):
    with _app(tmp_path) as it:
        assert it.sync(person(1)).exit_code == 0
        it.frozen.update({"all-staff", "finance-admins"})
        assert it.sync(person(1, status="terminated")).exit_code == 1
        held = it.groups_of(it.account())
        status = runner.invoke(app, ["status", "--json", "-c", str(it.config)])
    assert held == {"all-staff", "finance-admins"}
    kept = json.loads(status.output)["access_not_removed"]
    assert sorted(r for item in kept for r in item["remains"]) == ["member of all-staff", "member of finance-admins"]


def test_reconcile_fix_keeps_what_the_link_says_of_a_group_too_large_to_read(tmp_path: Path):
    """A leaver still in an all-staff group too large to list (its removal refused), whose account
    someone enabled again: `reconcile --fix` disables it again and must not forget all-staff (the
    listing could not show its members), or the leaver's access would stop being reported."""
    with _app(tmp_path) as it:
        assert it.sync(person(1)).exit_code == 0
        account = it.account()
        staff = next(
            g for g in httpx.get(f"{it.upstream}/Groups").json()["Resources"] if g["displayName"] == "all-staff"
        )
        padding = [{"value": f"someone-else-{i}"} for i in range(40)]  # over the cap below, with the leaver
        patch = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": padding}]}
        httpx.patch(f"{it.upstream}/Groups/{staff['id']}", json=patch).raise_for_status()
        it.frozen.add("all-staff")
        assert it.sync(person(1, status="terminated")).exit_code == 1
        enable = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]}
        httpx.patch(f"{it.upstream}/Users/{account}", json=enable).raise_for_status()
        capped = json.loads(it.config.read_text())
        capped["targets"][0] |= {"max_response_bytes": 1024, "page_size": 1}
        (tmp_path / "capped.yaml").write_text(json.dumps(capped))
        fixed = runner.invoke(app, ["reconcile", "--fix", "-c", str(tmp_path / "capped.yaml")])
        active = httpx.get(f"{it.upstream}/Users/{account}").json().get("active")
        status = runner.invoke(app, ["status", "--json", "-c", str(it.config)])
    assert active is False, fixed.output
    kept = json.loads(status.output)["access_not_removed"]
    assert [r for item in kept for r in item["remains"]] == ["member of all-staff"], (fixed.output, kept)
