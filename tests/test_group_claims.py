"""A group of a given name is created once per app across engines (issue 22), through a claim in
the store; reconcile reports duplicate groups and `--fix` merges them into one. Real scim2-server
over HTTP, store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from provisioner.engine.kit.process import new_owner
from provisioner.engine.runtime.wiring import StoreNameClaims
from provisioner.engine.store import Store
from provisioner.reconcile.groups import find_duplicates, merge_duplicates
from provisioner.targets import build_target
from provisioner.targets.scim import ScimTarget
from tests.conftest import make_config

pytestmark = pytest.mark.fast

USERS = 12
SCHEMA_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCHEMA_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _target(store_url: str, url: str) -> ScimTarget:
    config = make_config(store_url, url, {"name": "hr", "type": "file", "path": "/dev/null"})
    target = build_target(config.targets[0])
    assert isinstance(target, ScimTarget)
    return target


def _users(scim: httpx.Client) -> list[str]:
    return [
        scim.post("/Users", json={"schemas": [SCHEMA_USER], "userName": f"u{i}@example.com"}).json()["id"]
        for i in range(USERS)
    ]


def _groups(scim: httpx.Client, name: str) -> list[dict]:
    found = scim.get("/Groups", params={"count": 1000}).json().get("Resources", [])
    return [g for g in found if g.get("displayName") == name]


async def test_engines_sharing_a_store_create_a_group_of_a_name_once(store_url, scim_server, scim):
    store = Store(store_url)
    users = _users(scim)
    # Two engines (two writers, each with its own in-process lock and cache) add people at once.
    engines = [_target(store_url, scim_server.url) for _ in range(2)]
    for engine in engines:
        engine.share_names(StoreNameClaims(store, new_owner()))
    results = await asyncio.gather(*(engines[i % 2].set_groups(user, ["staff"], []) for i, user in enumerate(users)))
    assert all(r.ok for r in results), [r.error for r in results]
    [staff] = _groups(scim, "staff")
    assert {m["value"] for m in staff.get("members", [])} == set(users)
    for engine in engines:
        await engine.aclose()
    store.close()


async def test_reconcile_merges_duplicate_groups_into_one(store_url, scim_server, scim):
    store = Store(store_url)
    users = _users(scim)
    for members in (users[:5], users[5:8], []):  # what engines without shared claims left behind
        group = {"schemas": [SCHEMA_GROUP], "displayName": "staff", "members": [{"value": u} for u in members]}
        assert scim.post("/Groups", json=group).status_code == 201
    scim.post("/Groups", json={"schemas": [SCHEMA_GROUP], "displayName": "ops"})
    target = _target(store_url, scim_server.url)
    [duplicate] = await find_duplicates("app", target)
    assert duplicate.name == "staff" and len(duplicate.groups) == 3
    notes = await merge_duplicates(store, {"app": target}, [duplicate])
    assert "merged 2 duplicate groups 'staff'" in notes[0]
    [staff] = _groups(scim, "staff")
    assert staff["id"] == duplicate.groups[0].id  # the one with the most members is kept
    assert {m["value"] for m in staff.get("members", [])} == set(users[:8])
    assert await find_duplicates("app", target) == []
    await target.aclose()
    store.close()


async def test_a_group_deleted_in_the_app_is_looked_for_again_not_failed_on_forever(store_url, scim_server, scim):
    """Engines keep a group's id (in memory and in the shared claim). Once the app deleted that
    group (reconcile --fix merged it away, or a person did), a removal from it is done (the group is
    gone) and an addition makes the group anew, instead of a 404 on every change until a restart."""
    store = Store(store_url)
    first, second = _users(scim)[:2]
    engines = [_target(store_url, scim_server.url) for _ in range(2)]
    for engine in engines:
        engine.share_names(StoreNameClaims(store, new_owner()))
    for engine in engines:  # both learn the group's id
        assert (await engine.set_groups(first, ["staff"], [])).ok
    [old] = _groups(scim, "staff")
    assert scim.delete(f"/Groups/{old['id']}").status_code == 204
    added = await engines[0].set_groups(second, ["staff"], [])
    assert added.ok, added.error
    [new] = _groups(scim, "staff")
    assert new["id"] != old["id"] and {m["value"] for m in new["members"]} == {second}
    removed = await engines[1].set_groups(second, [], ["staff"])  # its cached id is the deleted one
    assert removed.ok, removed.error
    assert not _groups(scim, "staff")[0].get("members")
    for engine in engines:
        await engine.aclose()
    store.close()
