"""A write counts only when the app shows it, and what an app does is learned once and kept in the
store: scim2-server behind fronts (tests/scim_front.py) that answer success and change nothing,
drop attributes, or refuse the credentials; the store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from typer.testing import CliRunner

from provisioner.engine.cli.main import app as cli
from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Outcome, Worker
from provisioner.engine.contracts.profile import TargetProfile
from provisioner.engine.kit.servers import scim_server_process, serve_asgi
from provisioner.engine.runtime import views
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.store import Store
from provisioner.rules.planner import TargetSpec
from provisioner.targets.scim import ScimTarget
from provisioner.targets.scim_support import DEFAULT_MAPPING
from tests.conftest import make_config, person
from tests.scim_front import Front, scim_error
from tests.scim_habits import DEPT, ENTERPRISE, refuses_department

SPEC = TargetSpec.compile("app", "disable", DEFAULT_MAPPING)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with scim_server_process() as url:
        yield url


def worker(i: int, **kw: Any) -> Worker:
    fields = {"id": f"hr:{i}", "source": "hr", "remote_id": str(i), "first_name": "Ada", "last_name": "L"}
    return Worker(**{**fields, "work_email": f"ada{i}@example.com", "title": "Engineer", "status": "active", **kw})


def target(url: str, **extra: Any) -> ScimTarget:
    return ScimTarget.from_config(
        TargetConfig.model_validate({"name": "app", "type": "scim", "base_url": url, **extra})
    )


def ignoring(upstream: str, what: str) -> Front:
    """A front that answers 200, with the resource as it was, to a PATCH touching `what`."""

    def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
        if method == "PATCH" and any(str(op.get("path", "")).startswith(what) for op in body.get("Operations", [])):
            return JSONResponse(httpx.get(f"{upstream}{path}").json())
        return None

    return Front(upstream, intercept=intercept)


async def test_an_update_or_a_disable_the_app_ignores_is_a_failure_saying_so(upstream: str):
    for what, change in (("title", {"title": "Staff Engineer"}), ("active", None)):
        with serve_asgi(ignoring(upstream, what).app()) as front:
            scim = target(front.url)
            try:
                w = worker(10 if what == "title" else 11)
                created = await scim.create(w, SPEC.render(w))
                assert created.ok, created.error
                account = str(created.account_id)
                result = await (scim.update(account, change, SPEC.render(w)) if change else scim.disable(account))
            finally:
                await scim.aclose()
        assert not result.ok and not result.transient and result.outcome is Outcome.not_applied
        assert str(result.error).startswith("the app answered success but did not apply:"), result.error
        assert what in str(result.error)
        held = httpx.get(f"{upstream}/Users/{account}").json()
        assert held["title"] == "Engineer" and held["active"] is True  # as the failure says


async def test_members_matched_by_ref_and_a_group_created_with_members(upstream: str):
    """An app that lists members with `$ref` only (no matching value) still shows who is in."""
    posted: list[Any] = []

    def by_ref(method: str, path: str, body: Any) -> Any:
        if path.startswith("/Groups") and isinstance(body, dict) and "members" in body:
            refs = [{"$ref": f"{upstream}/Users/{m['value']}", "value": "opaque"} for m in body["members"]]
            return {**body, "members": refs}
        return body

    def record(method: str, path: str, body: Any) -> Any:
        if method == "POST" and path == "/Groups":
            posted.append(body)
        return body

    front = Front(upstream, rewrite_answer=by_ref, rewrite_request=record)
    with serve_asgi(front.app()) as server:
        scim = target(server.url)
        try:
            w = worker(12)
            account = str((await scim.create(w, SPEC.render(w))).account_id)
            joined = await scim.set_groups(account, ["by-ref"], [])
            left = await scim.set_groups(account, [], ["by-ref"])
        finally:
            await scim.aclose()
    assert joined.ok and left.ok, (joined.error, left.error)
    assert posted and posted[0]["members"] == []  # spelt out: some apps refuse a group without it


async def test_what_is_learned_is_kept_and_used_by_a_fresh_process(upstream: str, store_url: str, tmp_path: Path):
    front = Front(upstream, drop={"title"})
    i = 21 if store_url.startswith("postgres") else 20  # one upstream for both stores: a person each
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(i, title="Admiral")]))
    with serve_asgi(front.app()) as server:
        config = make_config(store_url, server.url, {"name": "hr", "type": "file", "path": str(people)},
                             target={"bulk": False})  # fmt: skip
        first = Parts(config)
        try:
            scim = first.targets["app"]
            assert isinstance(scim, ScimTarget)
            w = worker(i, title="Admiral")
            created = await scim.create(w, SPEC.render(w))
            assert created.ok and scim.not_kept() == {"title"}
        finally:
            await first.aclose()
        fresh = Parts(config)  # another process: nothing in memory, the store only
        try:
            again = fresh.targets["app"]
            assert isinstance(again, ScimTarget)
            assert again.not_kept() == {"title"}
            before = len(front.seen)
            resent = await again.update(str(created.account_id), {"title": "Fleet Admiral"}, SPEC.render(w))
            assert resent.ok and len(front.seen) == before  # not sent again: the app would drop it again
            stored = fresh.store.profiles.get("app")
            assert stored is not None and stored.not_kept == ["title"]
            shown = views.targets(config, fresh.store)[0]
            assert shown.learned["not kept"] == "title" and shown.learned_at is not None
        finally:
            await fresh.aclose()


async def test_a_changed_service_provider_config_means_learning_again(upstream: str):
    scim = target(upstream)
    saved: list[TargetProfile] = []
    scim.use_profile(
        TargetProfile(not_kept=["title"], put_only=["Users"], config_hash="from-another-app"), saved.append
    )
    try:
        await scim.discover()
    finally:
        await scim.aclose()
    assert scim.not_kept() == set() and scim.profile().put_only == []
    assert saved[-1].config_hash not in (None, "from-another-app") and saved[-1].not_kept == []


def test_targets_check_proves_the_credentials_and_shows_what_was_learned(upstream: str, tmp_path: Path):
    def bearer(method: str, path: str, body: Any, request: Request) -> Response | None:
        # /ServiceProviderConfig is public (RFC 7644 §4): only a read of users proves a token
        if path != "/ServiceProviderConfig" and request.headers.get("authorization") != "Bearer right":
            return scim_error(401, "invalid token")
        return None

    def config(token: str) -> Path:
        raw = {
            "store": {"url": f"sqlite:///{tmp_path / 'p.db'}"},
            "sources": [{"name": "hr", "type": "file", "path": str(tmp_path / "none.json")}],
            "targets": [{"name": "app", "type": "scim", "base_url": server.url, "token": token}],
            "policies": [],
        }
        path = tmp_path / f"{token}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    with serve_asgi(Front(upstream, intercept=bearer).app()) as server:
        wrong = CliRunner().invoke(cli, ["targets", "check", "--config", str(config("wrong"))])
        right = CliRunner().invoke(cli, ["targets", "check", "--config", str(config("right"))])
        store = Store(f"sqlite:///{tmp_path / 'p.db'}")
        store.profiles.save("app", TargetProfile(not_kept=["title"]))  # no hash: only --relearn forgets it
        store.close()
        relearned = CliRunner().invoke(cli, ["targets", "check", "--relearn", "--config", str(config("right"))])
    assert wrong.exit_code == 1 and "credentials refused" in wrong.output
    assert "accepted" not in wrong.output
    assert right.exit_code == 0, right.output
    assert "learned: member removals" in right.output and "not learned yet" in right.output
    assert relearned.exit_code == 0 and "learned: not kept" in relearned.output
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        kept = store.profiles.get("app")
        assert kept is not None and kept.not_kept == [] and kept.config_hash is not None
    finally:
        store.close()


async def test_a_batch_of_member_changes_fails_only_the_people_the_app_did_not_take(upstream: str):
    """Concurrent joins to one group go out as one PATCH; the app quietly skips one person: that
    person's change fails (every form tried), the other's succeeds."""
    skipped: list[str] = []

    def skip_one(method: str, path: str, body: Any) -> Any:
        if method in ("PATCH", "PUT") and path.startswith("/Groups/") and skipped:
            ops = [
                {**op, "value": [m for m in op["value"] if m.get("value") != skipped[0]]}
                if isinstance(op.get("value"), list)
                else op
                for op in body.get("Operations", [])
            ]
            if "Operations" in body:
                return {**body, "Operations": ops}
            return {**body, "members": [m for m in body.get("members", []) if m.get("value") != skipped[0]]}
        return body

    with serve_asgi(Front(upstream, rewrite_request=skip_one).app()) as server:
        scim = target(server.url)
        try:
            one, two = worker(30), worker(31)
            first = str((await scim.create(one, SPEC.render(one))).account_id)
            second = str((await scim.create(two, SPEC.render(two))).account_id)
            skipped.append(second)
            results = await asyncio.gather(
                scim.set_groups(first, ["batch"], []), scim.set_groups(second, ["batch"], [])
            )
        finally:
            await scim.aclose()
    assert results[0].ok, results[0].error
    assert not results[1].ok and "did not apply: add to group 'batch'" in str(results[1].error)
    assert results[1].outcome is Outcome.not_applied and results[0].outcome is None
    assert "patch answered success" in str(results[1].error) and "put answered success" in str(results[1].error)


async def test_an_attribute_the_app_refuses_does_not_keep_the_others_out(upstream: str):
    with serve_asgi(refuses_department(upstream).app()) as server:
        scim = target(server.url)
        try:
            w = worker(40, department="Engineering")
            account = str((await scim.create(w, SPEC.render(w))).account_id)
            moved = await scim.update(account, {"title": "Lead", DEPT: "Sales"}, SPEC.render(w))
        finally:
            await scim.aclose()
    held = httpx.get(f"{upstream}/Users/{account}").json()
    assert not moved.ok and DEPT in str(moved.error) and "the other attributes were written" in str(moved.error)
    assert "title:" not in str(moved.error)
    assert held["title"] == "Lead" and held[ENTERPRISE]["department"] == "Engineering"
    assert scim.profile().put_only == []  # the PUT refused it too: PATCH stays the way to write


async def test_attributes_the_app_takes_one_by_one_but_not_together_are_a_success(upstream: str):
    """An app that refuses a PATCH of several attributes at once (400) but takes each alone: once
    every attribute is written alone the update succeeded, it is not a failure without a reason."""

    def one_op_per_patch(method: str, path: str, body: Any, request: Any) -> Any:
        if method == "PATCH" and path.startswith("/Users/") and len(body.get("Operations") or []) > 1:
            return scim_error(400, "one operation per request", "invalidSyntax")
        return None

    with serve_asgi(Front(upstream, intercept=one_op_per_patch).app()) as server:
        scim = target(server.url)
        try:
            w = worker(41)
            account = str((await scim.create(w, SPEC.render(w))).account_id)
            moved = await scim.update(account, {"title": "Lead", "displayName": "Ada Lead"}, SPEC.render(w))
        finally:
            await scim.aclose()
    held = httpx.get(f"{upstream}/Users/{account}").json()
    assert held["title"] == "Lead" and held["displayName"] == "Ada Lead"
    assert moved.ok, moved.error
