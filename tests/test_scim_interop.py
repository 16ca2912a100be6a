"""The SCIM writer against apps as they really behave: other auth schemes, PATCH refused the way
django-scim2 refuses it, userName in another case (SCIMMY compares it case-exactly), a search
index that lags behind creates, and attributes an app does not keep. Real servers (scim2-server,
SCIMMY) behind a small ASGI front (tests/scim_front.py) that adds the habit under test."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Outcome, Worker
from provisioner.engine.kit.servers import scim_server_process, serve_asgi
from provisioner.engine.runtime.app import Runtime
from provisioner.reconcile.classify import Situation
from provisioner.reconcile.run import reconcile
from provisioner.rules.planner import TargetSpec
from provisioner.targets.scim import ScimTarget
from provisioner.targets.scim_support import DEFAULT_MAPPING
from tests.conftest import make_config
from tests.scim_front import Front, empty_list, scim_error
from tests.scimmy_server import scimmy_available, scimmy_server_process

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
DEPT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
SPEC = TargetSpec.compile("app", "disable", DEFAULT_MAPPING)
needs_scimmy = pytest.mark.skipif(not scimmy_available(), reason="needs node and `npm ci --prefix tests/scimmy`")


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with scim_server_process() as url:
        yield url


def ada(**kw: Any) -> Worker:
    fields = {"id": "hr:1", "source": "hr", "remote_id": "1", "first_name": "Ada", "last_name": "L"}
    return Worker(**{**fields, "work_email": "ada@example.com", "title": "Engineer", "status": "active", **kw})


def target(url: str, **extra: Any) -> ScimTarget:
    config = TargetConfig.model_validate({"name": "app", "type": "scim", "base_url": url, **extra})
    return ScimTarget.from_config(config)


async def round_trip(scim: ScimTarget, worker: Worker) -> str:
    created = await scim.create(worker, SPEC.render(worker))
    assert created.ok, created.error
    assert (await scim.update(created.account_id, {"title": "Staff Engineer"}, SPEC.render(worker))).ok
    return str(created.account_id)


async def test_basic_auth(upstream: str):
    front = Front(upstream, basic=("svc-provisioner", "s3cret"))
    with serve_asgi(front.app()) as server:
        refused = target(server.url, auth={"type": "basic", "username": "svc-provisioner", "password": "wrong"})
        accepted = target(server.url, auth={"type": "basic", "username": "svc-provisioner", "password": "s3cret"})
        try:
            assert not (await refused.create(ada(), SPEC.render(ada()))).ok
            await round_trip(accepted, ada())
        finally:
            await refused.aclose()
            await accepted.aclose()
    assert front.seen[0][2] == 401 and all(status < 400 for *_, status in front.seen[1:])


async def test_oauth_client_credentials(upstream: str):
    front = Front(upstream, client=("provisioner", "client-secret"))
    with serve_asgi(front.app()) as server:
        auth = {
            "type": "oauth_client_credentials",
            "token_url": f"{server.url}/oauth/token",
            "client_id": "provisioner",
            "client_secret": "client-secret",
        }
        scim = target(server.url, auth=auth)
        try:
            await round_trip(scim, ada(id="hr:2", remote_id="2", work_email="ada2@example.com"))
        finally:
            await scim.aclose()
    assert len(front.tokens) == 1 and not any(status == 401 for *_, status in front.seen)


def test_token_and_auth_block_together_are_refused():
    with pytest.raises(ValueError, match="either token"):
        target("http://127.0.0.1:9", token="t", auth={"type": "basic", "username": "u"})


def django_scim2_like(method: str, path: str, body: Any, request: Request) -> Response | None:
    """501 for PATCH replace of title/externalId/department, and for removing group members."""
    if method != "PATCH" or not isinstance(body, dict):
        return None
    for op in body.get("Operations", []):
        where = str(op.get("path", ""))
        if op.get("op") == "replace" and where in ("title", "externalId", DEPT):
            return scim_error(501, f"PATCH of {where} is not implemented")
        if op.get("op") == "remove" and where.startswith("members["):
            return scim_error(501, "removing members by PATCH is not implemented")
    return None


async def test_patch_refused_with_501_falls_back_to_put(upstream: str, caplog: pytest.LogCaptureFixture):
    front = Front(upstream, intercept=django_scim2_like)
    caplog.set_level(logging.WARNING, "provisioner.scim")
    worker = ada(id="hr:3", remote_id="3", work_email="ada3@example.com")
    with serve_asgi(front.app()) as server, httpx.Client(base_url=upstream) as client:
        scim = target(server.url)
        try:
            user_id = await round_trip(scim, worker)
            assert (await scim.update(user_id, {DEPT: "Research"}, SPEC.render(worker))).ok
            assert (await scim.set_groups(user_id, ["eng", "all-staff"], [])).ok
            moved = await scim.set_groups(user_id, ["research"], ["eng"])
            assert moved.ok, moved.error
            assert (await scim.set_groups(user_id, [], ["all-staff"])).ok
        finally:
            await scim.aclose()
        user = client.get(f"/Users/{user_id}").json()
        groups = {g["displayName"]: g for g in client.get("/Groups", params={"count": 100}).json()["Resources"]}
    assert user["title"] == "Staff Engineer" and user[DEPT.rsplit(":", 1)[0]]["department"] == "Research"
    assert [m["value"] for m in groups["research"]["members"]] == [user_id]
    assert not groups["eng"].get("members") and not groups["all-staff"].get("members")
    refusals = [(m, p) for m, p, status in front.seen if status == 501]
    assert len(refusals) == 2  # one per lesson: users, then the filter-path removal; never asked again
    assert sum("read-modify-PUT" in r.message for r in caplog.records) == 1
    # scim2-server does not apply the value list Entra ID sends; a replace of the list it does: learned
    assert scim.profile().removal == "replace" and scim.profile().put_only == ["Users"]


async def test_search_index_lag_then_409_is_resolved_by_a_listing(upstream: str):
    """The app's search has not caught up with an account made a moment ago: the filter misses,
    the create says 409, and a listing finds it."""
    with httpx.Client(base_url=upstream) as client:
        client.post("/Users", json={"schemas": [USER], "userName": "lagging@example.com"}).raise_for_status()

    def lagging(method: str, path: str, body: Any, request: Request) -> Response | None:
        # The search misses the account under the name it was made with. (The writer's one-time
        # probe of how the app compares userName asks for some account's name in swapped case;
        # the listing order is random, so that probe may pick this account: it reaches the server.)
        lagging_filter = "lagging@example.com" in request.query_params.get("filter", "")
        return empty_list() if method == "GET" and lagging_filter else None

    front = Front(upstream, intercept=lagging)
    worker = ada(id="hr:4", remote_id="4", work_email="lagging@example.com")
    with serve_asgi(front.app()) as server:
        scim = target(server.url)
        try:
            attributes = SPEC.render(worker)
            assert await scim.lookup(worker, None, attributes) is None
            assert (await scim.create(worker, attributes)).outcome is Outcome.conflict
            found = await scim.lookup(worker, None, attributes)
        finally:
            await scim.aclose()
    assert found is not None and found.attributes["userName"] == "lagging@example.com"


@needs_scimmy
async def test_username_in_another_case_is_adopted_on_scimmy(tmp_path: Path):
    token = "interop-token"
    with scimmy_server_process(token) as url:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers) as client:
            client.post("/Users", json={"schemas": [USER], "userName": "Ada@Example.com"}).raise_for_status()
            people = tmp_path / "people.json"
            row = {"remote_id": "1", "first_name": "Ada", "last_name": "L", "work_email": "ada@example.com"}
            people.write_text(json.dumps([{**row, "status": "active", "employment_type": "full_time"}]))
            config = make_config(
                f"sqlite:///{tmp_path / 's.db'}",
                url,
                {"name": "hr", "type": "file", "path": str(people)},
                target={"token": token},
            )
            async with Runtime(config) as runtime:
                await runtime.poll("hr")
                await runtime.wait_idle(timeout=60)
                assert runtime.totals.failed == 0, runtime.totals.failures[:3]
                assert runtime.totals.actions["adopt:success"] == 1
                report = await reconcile(runtime.parts)
            users = client.get("/Users", params={"count": 100}).json()["Resources"]
    assert [u["userName"] for u in users] == ["Ada@Example.com"]
    assert users[0]["externalId"] == "hr:1"
    assert [i.situation for i in report.items] == [Situation.confirmed]


async def test_attributes_the_app_does_not_keep_are_reported_not_drift(upstream: str, tmp_path: Path):
    front = Front(upstream, drop={"title"})
    people = tmp_path / "people.json"
    row = {"remote_id": "9", "first_name": "Grace", "last_name": "H", "work_email": "grace@example.com"}
    people.write_text(json.dumps([{**row, "title": "Admiral", "status": "active", "employment_type": "full_time"}]))
    with serve_asgi(front.app()) as server:
        config = make_config(
            f"sqlite:///{tmp_path / 's.db'}",
            server.url,
            {"name": "hr", "type": "file", "path": str(people)},
            target={"bulk": False},
        )
        async with Runtime(config) as runtime:
            await runtime.poll("hr")
            await runtime.wait_idle(timeout=60)
            assert runtime.totals.failed == 0, runtime.totals.failures[:3]
            assert runtime.parts.targets["app"].not_kept() == {"title"}
            report = await reconcile(runtime.parts)
    assert report.not_kept == {"app": ["title"]}
    assert [i.situation for i in report.items if i.worker_id == "hr:9"] == [Situation.confirmed]


async def test_a_group_create_whose_answer_was_lost_makes_no_second_group(upstream: str):
    """The app made the group but its answer was lost: the writer looks before it asks again, since
    displayName is not unique in SCIM and a repeated POST would make a second group."""
    lost: list[int] = []

    def answer_lost(method: str, path: str, body: Any, request: Request) -> Response | None:
        if method == "POST" and path == "/Groups" and not lost:
            lost.append(httpx.post(f"{upstream}/Groups", json=body).status_code)  # made...
            return scim_error(500, "the answer never arrived")  # ...but the engine hears a 500
        return None

    front = Front(upstream, intercept=answer_lost)
    worker = ada(id="hr:9", remote_id="9", work_email="ada9@example.com")
    with serve_asgi(front.app()) as server, httpx.Client(base_url=upstream) as client:
        scim = target(server.url)
        try:
            created = await scim.create(worker, SPEC.render(worker))
            joined = await scim.set_groups(str(created.account_id), ["answer-lost"], [])
        finally:
            await scim.aclose()
        groups = [g for g in client.get("/Groups", params={"count": 200}).json()["Resources"]]
    assert lost == [201] and joined.ok, joined.error
    same_name = [g for g in groups if g["displayName"] == "answer-lost"]
    assert len(same_name) == 1
    assert [m["value"] for m in same_name[0].get("members") or []] == [created.account_id]
    assert [(m, p) for m, p, status in front.seen if m == "POST" and p == "/Groups"] == [("POST", "/Groups")]
