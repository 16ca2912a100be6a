"""A group too large to read back whole (an all-staff group of a large company answers megabytes,
past the target's max_response_bytes none at all): member writes are still confirmed, one account
at a time by the RFC's member filter where this app was seen to answer it as a full read did, and
otherwise fail saying why. Against four SCIM servers over HTTP, with a small cap standing in for a
group of a hundred thousand; the truth is read from each server directly, with no cap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from typer.testing import CliRunner

from provisioner.engine.cli.main import app as cli
from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import ResultStatus
from provisioner.engine.contracts.profile import TargetProfile
from provisioner.engine.kit.servers import scim_server_process, serve_asgi
from provisioner.targets import scim_member_filter
from provisioner.targets.scim import ScimTarget
from tests.djscim_server import djscim_available, djscim_server
from tests.scim_front import Front
from tests.scim_habits import HABITS
from tests.scimmy_server import scimmy_available, scimmy_server_process

CAP = 1024  # bytes (the least allowed): passed by each app's group at 10 to 25 members
PEOPLE = 48
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@contextmanager
def _scim2_server() -> Iterator[tuple[str, str, str | None]]:
    with scim_server_process() as url:
        yield url, url, None


@contextmanager
def _scimmy() -> Iterator[tuple[str, str, str | None]]:
    with scimmy_server_process("large-groups") as url:
        yield url, url, "large-groups"


@contextmanager
def _django(api: str) -> Iterator[tuple[str, str, str | None]]:
    with djscim_server(api) as (url, token):
        yield url, url, token


@contextmanager
def _habit(name: str) -> Iterator[tuple[str, str, str | None]]:
    """scim2-server behind a front with one habit seen in the field (tests/scim_habits.py)."""
    with scim_server_process() as upstream, serve_asgi(HABITS[name](upstream).app()) as front:
        yield front.url, upstream, None


no_node = pytest.mark.skipif(not scimmy_available(), reason="needs node and `npm ci --prefix tests/scimmy`")
no_django = pytest.mark.skipif(not djscim_available(), reason="needs the dev extras")
SERVERS: dict[str, Callable[[], Any]] = {
    "scim2-server": _scim2_server,
    "scimmy": _scimmy,
    "django-scim2": lambda: _django("scim"),
    "django-scim2-server": lambda: _django("scim2s"),
    "members-by-userName": lambda: _habit("members-by-userName"),
    "removal-ignored": lambda: _habit("removal-ignored"),
}
MARKS = {"scimmy": [no_node], "django-scim2": [no_django], "django-scim2-server": [no_django]}
# What each app does with `id eq "g" and members[value eq "u"]` (answers it right; answers no group
# for a member; refuses it, 400; never probed: it lists members by userName), and what of the changes
# past the cap it takes: all, the additions alone (it answers 200 to a removal and removes nobody),
# or none that can be confirmed.
EXPECTED: dict[str, tuple[bool | None, str]] = {
    "scim2-server": (True, "all"),
    "scimmy": (True, "all"),
    "django-scim2": (False, "none"),
    "django-scim2-server": (False, "none"),
    "members-by-userName": (None, "none"),
    "removal-ignored": (True, "additions"),
}


def _truth(http: httpx.Client, group: str, names: dict[str, str]) -> set[str]:
    """The account ids the app lists in the group (found by listing: not every app filters groups
    by displayName; members by value, by `$ref` or, on one app, by userName)."""
    groups: list[dict[str, Any]] = []
    while True:
        page = http.get("Groups", params={"startIndex": len(groups) + 1, "count": 50}).json()
        groups += page.get("Resources") or []
        if not page.get("Resources") or len(groups) >= int(page.get("totalResults", 0)):
            break
    found = [g for g in groups if g.get("displayName") == group]
    if not found:
        return set()
    whole = http.get(f"Groups/{found[0]['id']}").json()
    held = set()
    for member in whole.get("members") or []:
        value, ref = str(member.get("value")), str(member.get("$ref") or "").rstrip("/").rsplit("/", 1)[-1]
        held |= {names.get(value.lower(), value), ref} - {""}
    return held


@pytest.mark.parametrize("server", [pytest.param(s, marks=MARKS.get(s, [])) for s in SERVERS])
async def test_a_group_too_large_to_read_is_confirmed_by_filter_or_fails_saying_why(
    server: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(scim_member_filter, "LARGE_GROUP", 5)  # the probe, while it can still be read whole
    with SERVERS[server]() as (url, truth, token):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        direct = httpx.Client(base_url=truth.rstrip("/") + "/", headers=headers, timeout=30)
        ids, names = [], {}  # account ids; userName -> id
        for i in range(PEOPLE):
            name = f"p{i}@large.example"
            body = {"schemas": [USER], "userName": name, "name": {"givenName": "P", "familyName": str(i)}}
            ids.append(str(direct.post("Users", json=body).raise_for_status().json()["id"]))
            names[name] = ids[-1]
        config = TargetConfig(name="app", type="scim", base_url=url, token=token, max_response_bytes=CAP)
        target = ScimTarget.from_config(config)
        saved: list[TargetProfile] = []
        target.use_profile(None, saved.append)
        said: dict[tuple[str, str], bool] = {}  # (op, account) -> the engine said it happened

        async def change(op: str, account: str) -> None:
            add, remove = (["all-staff"], []) if op == "add" else ([], ["all-staff"])
            result = await target.set_groups(account, add, remove)
            said[(op, account)] = result.status == ResultStatus.success
            if result.status != ResultStatus.success:
                errors.append(result.error or "")

        errors: list[str] = []
        try:
            for account in ids[:24]:  # one at a time: the group grows past the cap on the way
                await change("add", account)
            await asyncio.gather(*(change("add", account) for account in ids[24:]))  # a batch of many
            await asyncio.gather(*(change("remove", account) for account in ids[:6]))  # leavers
        finally:
            await target.aclose()
        held = _truth(direct, "all-staff", names)
        direct.close()

    # What the engine said happened is what the app holds, on every server.
    assert said, "nothing was asked"
    for (op, account), happened in said.items():
        last = op == "remove" or account not in ids[:6]  # the leavers were added first
        if happened and last:
            assert (account in held) is (op == "add"), f"{server}: {op} {account} said done, the app differs"
    assert target.groups.members.check.large, ("the group never outgrew the cap", errors[:2], said)
    learned, takes = EXPECTED[server]
    assert target.client.lessons.member_filter is learned, f"{server}: member filter judged otherwise"
    assert saved and saved[-1].member_filter is learned  # kept for the next process
    if takes == "all":
        assert all(said.values()), errors[:3]
        assert held == set(ids[6:])
    elif takes == "additions":  # removals answered 200 and ignored: each one failed, none claimed
        assert all(happened is (op == "add") for (op, _), happened in said.items()), errors[:3]
        assert held == set(ids)
    else:  # the group outgrew what may be read: said so, not taken for done
        assert errors and all("cannot confirm" in e and "max_response_bytes" in e for e in errors), errors[:3]


def _answers_204_to_patch(upstream: str) -> Front:
    """An app that answers a PATCH with 204 No Content (RFC 7644 §3.5.2 allows it): each member
    write is read back another way."""

    def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
        if method == "PATCH" and path.startswith("/Groups/"):
            httpx.patch(f"{upstream}{path}", json=body).raise_for_status()
            return Response(status_code=204)
        return None

    return Front(upstream, intercept=intercept)


async def test_a_group_known_too_large_is_not_read_whole_again(monkeypatch: pytest.MonkeyPatch):
    """An app answering 204 to a PATCH: each write is read back. Once the group answered more than
    the cap, later writes are asked about by filter straight away, not tried whole first."""
    monkeypatch.setattr(scim_member_filter, "LARGE_GROUP", 8)
    with scim_server_process() as upstream, serve_asgi(_answers_204_to_patch(upstream).app()) as front:
        ids = []
        for i in range(PEOPLE):
            user = httpx.post(f"{upstream}/Users", json={"schemas": [USER], "userName": f"q{i}@x.example"})
            ids.append(str(user.json()["id"]))
        config = TargetConfig(name="app", type="scim", base_url=front.url, max_response_bytes=CAP)
        target = ScimTarget.from_config(config)
        target.use_profile(None, lambda profile: None)
        reads: list[str] = []

        async def note(request: httpx.Request) -> None:
            if request.method == "GET" and "/Groups/" in request.url.path:
                reads.append(request.url.path)

        target.http.event_hooks["request"].append(note)
        whole_reads = []  # per write
        try:
            for account in ids:
                before = len(reads)
                assert (await target.set_groups(account, ["all-staff"], [])).status == ResultStatus.success
                whole_reads.append(len(reads) - before)
            assert (await target.set_groups(ids[0], [], ["all-staff"])).status == ResultStatus.success
        finally:
            await target.aclose()
        group = httpx.get(f"{upstream}/Groups").json()["Resources"][0]
    assert target.client.lessons.member_filter is True
    # read back whole while it could be, then never again: one read of each write before the cap
    assert whole_reads[:10] == [1] * 10 and whole_reads[-10:] == [0] * 10, whole_reads
    assert {m["value"] for m in group["members"]} == set(ids[1:])


def _reconcile_config(tmp_path, url: str, **target: Any):  # type: ignore[no-untyped-def]
    config = tmp_path / "provisioner.yaml"
    grant = {"target": "app", "groups": ["all-staff"]}
    config.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
                "sources": [{"name": "hr", "type": "file", "path": str(tmp_path / "people.json")}],
                "targets": [{"name": "app", "type": "scim", "base_url": url, **target}],
                "policies": [{"name": "all", "when": "true", "grant": [grant]}],
            }
        )
    )
    return config


def test_reconcile_compares_all_but_a_group_too_large_to_read_and_names_it(tmp_path):
    """An all-staff group over max_response_bytes: every account is still judged, the group's members
    are compared for nobody (no false 'groups missing' for everyone in it), and the report names
    it with what to raise; exit 2, never a traceback. A cap no page fits: not reconciled, said so."""
    people = [
        {"remote_id": str(i), "first_name": "P", "last_name": str(i), "work_email": f"p{i}@x.example"} for i in (1, 2)
    ]
    (tmp_path / "people.json").write_text(json.dumps(people))
    with scim_server_process() as url:
        assert CliRunner().invoke(cli, ["sync", "-c", str(_reconcile_config(tmp_path, url))]).exit_code == 0
        staff = httpx.get(f"{url}/Groups").json()["Resources"][0]
        others = [{"value": f"someone-else-{i}"} for i in range(40)]  # people the engine does not manage
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": others}],
        }
        httpx.patch(f"{url}/Groups/{staff['id']}", json=patch).raise_for_status()
        capped = _reconcile_config(tmp_path, url, max_response_bytes=CAP, page_size=1)
        judged = CliRunner().invoke(cli, ["reconcile", "--json", "-c", str(capped)])
        text = CliRunner().invoke(cli, ["reconcile", "-c", str(capped)], env={"COLUMNS": "200"})
        nothing = CliRunner().invoke(
            cli, ["reconcile", "-c", str(_reconcile_config(tmp_path, url, max_response_bytes=CAP))]
        )
    assert judged.exit_code == 2, judged.output
    report = json.loads(judged.output)
    assert report["unread_groups"] == {"app": ["all-staff"]}
    assert report["summary"] == {"app": {"confirmed": 2}} and report["items"] == []
    assert "not compared" in text.output and "max_response_bytes" in text.output, text.output
    assert nothing.exit_code == 2 and "not reconciled" in nothing.output.lower(), nothing.output
    assert "max_response_bytes" in nothing.output, nothing.output  # what to raise
    assert isinstance(nothing.exception, SystemExit), nothing.exception  # an exit, not a traceback


def test_duplicates_of_a_group_too_large_to_read_are_reported_not_merged(tmp_path):
    """Two groups named all-staff, one too large to read: which to keep (the most members) cannot be
    told, so `--fix` leaves them and says why, and runs the rest (never a traceback)."""
    (tmp_path / "people.json").write_text("[]")
    with scim_server_process() as url:
        group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "all-staff"}
        big = [{"value": f"someone-{i}"} for i in range(40)]
        httpx.post(f"{url}/Groups", json={**group, "members": big}).raise_for_status()
        httpx.post(f"{url}/Groups", json={**group, "members": [{"value": "someone-else"}]}).raise_for_status()
        config = _reconcile_config(tmp_path, url, max_response_bytes=CAP, page_size=1)
        fixed = CliRunner().invoke(cli, ["reconcile", "--fix", "-c", str(config)], env={"COLUMNS": "200"})
        left = httpx.get(f"{url}/Groups", params={"excludedAttributes": "members"}).json()["totalResults"]
    assert fixed.exception is None or isinstance(fixed.exception, SystemExit), fixed.exception
    assert "not merged" in fixed.output and "too large to read" in fixed.output, fixed.output
    assert left == 2
