"""The SCIM writer against scim2-server in three configurations, each announced in its
/ServiceProviderConfig and enforced by the server: everything supported; PATCH unsupported
(read-modify-PUT with If-Match); neither filtering nor Bulk (lookups through a listing). And
against SCIMMY, a second implementation by other people (bearer token, no Bulk, case-exact
userName, a PATCH that changes nothing answers 204)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Outcome, ResultStatus, Worker
from provisioner.engine.kit.servers import scim_server_process
from provisioner.engine.runtime.app import Runtime
from provisioner.rules.planner import TargetSpec
from provisioner.targets.scim import ScimTarget
from provisioner.targets.scim_support import DEFAULT_MAPPING
from tests.conftest import make_config
from tests.scimmy_server import scimmy_available, scimmy_server_process

CONFIGS = sorted((Path(__file__).parent / "scim_configs").glob("*.json"))
DEPT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
SCIMMY = pytest.param(
    "scimmy", marks=pytest.mark.skipif(not scimmy_available(), reason="needs node and `npm ci --prefix tests/scimmy`")
)


@dataclass
class Server:
    url: str
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=[*CONFIGS, SCIMMY], ids=lambda p: p.stem if isinstance(p, Path) else p)
def scim_url(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "scimmy":
        with scimmy_server_process("servers-token") as url:
            yield Server(url, "servers-token", {"Authorization": "Bearer servers-token"})
        return
    with scim_server_process(str(request.param)) as url:
        yield Server(url)


def ada(**kw: str) -> Worker:
    return Worker(
        **{
            "id": "hr:1",
            "source": "hr",
            "remote_id": "1",
            "first_name": "Ada",
            "last_name": "L",
            "work_email": "ada@example.com",
            "title": "Engineer",
            "department": "R&D",
            "status": "active",
            **kw,
        }
    )


def all_users(client: httpx.Client) -> list[dict]:
    users, start = [], 1
    while True:
        page = client.get("/Users", params={"startIndex": start, "count": 500}).json()
        users += page.get("Resources", [])
        start += len(page.get("Resources", []))
        if not page.get("Resources") or start > page["totalResults"]:
            return users


def members(client: httpx.Client, name: str) -> list[str]:
    groups = client.get("/Groups", params={"count": 1000}).json().get("Resources", [])
    group = next((g for g in groups if g["displayName"] == name), None)
    return [m["value"] for m in (group or {}).get("members") or []]


async def test_every_write_on_every_configuration(scim_url: Server):
    spec = TargetSpec.compile("app", "disable", DEFAULT_MAPPING)
    target = ScimTarget.from_config(
        TargetConfig.model_validate({"name": "app", "type": "scim", "base_url": scim_url.url, "token": scim_url.token})
    )
    client = httpx.Client(base_url=scim_url.url, headers=scim_url.headers)
    try:
        worker = ada()
        created = await target.create(worker, spec.render(worker))
        assert created.ok, created.error
        user_id = created.account_id
        # Another system owns nickName: our writes must never blank it.
        user = client.get(f"/Users/{user_id}").json()
        user.pop("meta")
        client.put(f"/Users/{user_id}", json={**user, "nickName": "ada-l"}).raise_for_status()

        moved = ada(title="Staff Engineer", department="Research")
        update = await target.update(user_id, {"title": "Staff Engineer", DEPT: "Research"}, spec.render(worker))
        assert update.ok, update.error
        user = client.get(f"/Users/{user_id}").json()
        assert user["title"] == "Staff Engineer" and user[DEPT.rsplit(":", 1)[0]]["department"] == "Research"
        assert user["nickName"] == "ada-l" and user["userName"] == "ada@example.com"

        assert (await target.set_groups(user_id, ["eng", "all-staff"], [])).ok
        assert user_id in members(client, "eng") and user_id in members(client, "all-staff")
        assert (await target.set_groups(user_id, [], ["eng"])).ok
        assert members(client, "eng") == [] and members(client, "all-staff") == [user_id]

        assert (await target.disable(user_id)).ok
        assert client.get(f"/Users/{user_id}").json()["active"] is False
        assert (await target.enable(user_id)).ok
        assert client.get(f"/Users/{user_id}").json()["active"] is True

        # Adopt on 409: the same userName again is a conflict, and the lookup finds the account.
        again = await target.create(moved, spec.render(moved))
        assert again.status is ResultStatus.skipped and again.outcome is Outcome.conflict
        found = await target.lookup(moved, None, spec.render(moved))
        assert found is not None and found.id == user_id
        assert len(all_users(client)) == 1

        assert (await target.delete(user_id)).ok
        assert client.get(f"/Users/{user_id}").status_code == 404
        assert (await target.delete(user_id)).ok  # already gone is what we wanted
    finally:
        client.close()
        await target.aclose()


async def test_initial_load_of_1000_users_without_duplicates(scim_url: Server, tmp_path: Path):
    rows = [
        {
            "remote_id": str(i),
            "first_name": f"F{i}",
            "last_name": f"L{i}",
            "work_email": f"u{i}@example.com",
            "employment_type": "full_time",
            "status": "active",
        }
        for i in range(1000)
    ]
    people = tmp_path / "people.json"
    people.write_text(json.dumps(rows))
    client = httpx.Client(base_url=scim_url.url, headers=scim_url.headers)
    # One of them already exists in the app: it must be adopted, not duplicated.
    client.post(
        "/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u500@example.com"}
    ).raise_for_status()
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}",
        scim_url.url,
        {"name": "hr", "type": "file", "path": str(people)},
        engine={"concurrency": 64},
        target={"token": scim_url.token},
    )
    try:
        async with Runtime(config) as runtime:
            await runtime.poll("hr")
            await runtime.wait_idle(timeout=240)
            assert runtime.totals.failed == 0, runtime.totals.failures[:3]
            assert runtime.totals.actions["adopt:success"] == 1
        users = all_users(client)
        names = Counter(u["userName"] for u in users)
        assert len(users) == 1000 and max(names.values()) == 1
        assert {u.get("externalId") for u in users} == {f"hr:{i}" for i in range(1000)}
        assert members(client, "staff").__len__() == 1000
    finally:
        client.close()
