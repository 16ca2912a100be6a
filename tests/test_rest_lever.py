"""The REST writer with the `lever-users` preset against the Lever users emulator, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from provisioner.engine.config import Config, TargetConfig
from provisioner.engine.contracts.models import ResultStatus, Worker
from provisioner.engine.kit.servers import BackgroundServer, serve_asgi
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.memory_bus import MemoryBus
from provisioner.sources.lever.users_emulator import LeverUsersState, create_app
from provisioner.targets.rest import RestTarget
from tests.conftest import person
from tests.test_end_to_end import sync, write

pytestmark = pytest.mark.fast


@pytest.fixture
def lever_state() -> LeverUsersState:
    return LeverUsersState()


@pytest.fixture
def lever(lever_state: LeverUsersState) -> Iterator[BackgroundServer]:
    with serve_asgi(create_app(lever_state)) as server:
        yield server


def target_config(url: str, key: str = "lever-test-key", **extra: object) -> dict:
    return {
        "name": "lever",
        "type": "rest",
        "preset": "lever-users",
        "base_url": url,
        "auth": {"type": "basic", "username": key},
        **extra,
    }


async def test_hire_rename_terminate_rehire_and_adopt_through_the_engine(tmp_path, lever, lever_state):
    lever_state.users["existing"] = {
        "id": "existing",
        "name": "Old Name",
        "email": "p0@example.com",
        "accessRole": "interviewer",
        "externalDirectoryId": None,
        "createdAt": 0,
        "deactivatedAt": 1,
        "username": "p0",
        "photo": None,
        "linkedContactIds": [],
    }
    people = tmp_path / "people.json"
    write(people, *[person(i) for i in range(5)])
    config = Config.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "sources": [{"name": "hr", "type": "file", "path": str(people)}],
            "targets": [target_config(lever.url)],
            "policies": [{"name": "all", "when": "true", "grant": [{"target": "lever"}]}],
        }
    )
    async with Runtime(config, bus=MemoryBus()) as runtime:
        await sync(runtime)
        assert runtime.totals.failed == 0, runtime.totals.failures
        users = {u["email"]: u for u in lever_state.users.values()}
        assert len(users) == 5  # p0 was adopted, not duplicated
        assert users["p0@example.com"]["id"] == "existing" and users["p0@example.com"]["name"] == "P0 Lee"
        assert users["p0@example.com"]["deactivatedAt"] is None  # adopting an in-scope person enables them
        assert users["p3@example.com"]["externalDirectoryId"] == "hr:3"

        write(people, person(0), person(1, preferred_name="Bea"), person(2, status="terminated"), person(3), person(4))
        await sync(runtime)
        users = {u["email"]: u for u in lever_state.users.values()}
        assert users["p1@example.com"]["name"] == "Bea Lee"
        assert users["p2@example.com"]["deactivatedAt"] is not None

        write(people, *[person(i) for i in range(5)])
        await sync(runtime)
        assert lever_state.users[users["p2@example.com"]["id"]]["deactivatedAt"] is None
        assert len(lever_state.users) == 5


async def test_bad_credentials_fail_once_and_clearly(lever, lever_state):
    target = RestTarget.from_config(TargetConfig.model_validate(target_config(lever.url, key="wrong")))
    result = await target.create(Worker(id="hr:1", source="hr", remote_id="1"), {"name": "A", "email": "a@x.com"})
    await target.aclose()
    assert result.status is ResultStatus.failure and "HTTP 401" in (result.error or "")
    assert "wrong" not in (result.error or "")
    assert lever_state.gate.accepted == [] and lever_state.gate.rejected == 0


async def test_listing_pages_with_the_offset_token(lever, lever_state):
    for i in range(230):
        lever_state.users[str(i)] = {
            "id": str(i),
            "name": "x",
            "email": f"{i}@x.com",
            "accessRole": "interviewer",
            "externalDirectoryId": None,
            "createdAt": i,
            "deactivatedAt": None,
        }
    target = RestTarget.from_config(TargetConfig.model_validate(target_config(lever.url)))
    accounts = [a async for a in target.list_accounts()]
    await target.aclose()
    assert len(accounts) == 230 and len({a.id for a in accounts}) == 230
    assert len(lever_state.gate.accepted) == 3  # 100 + 100 + 30


def test_presets_validate_and_refuse_delete_without_a_delete_operation():
    from provisioner.targets.rest import resolve

    with pytest.raises(ValueError, match="no delete operation"):
        resolve(TargetConfig.model_validate(target_config("http://x", on_terminate="delete")))
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        resolve(TargetConfig.model_validate({"name": "x", "type": "rest", "preset": "nope"}))
    full, settings = resolve(
        TargetConfig.model_validate(
            {"name": "x", "type": "rest", "preset": "lever-users", "auth": {"type": "basic", "username": "k"}}
        )
    )
    assert full.base_url == "https://api.lever.co/v1" and full.rate_limit == 10 and "email" in (full.mapping or {})
    assert json.dumps(sorted(settings.operations)) == json.dumps(
        sorted(["lookup", "create", "update", "disable", "enable", "list"])
    )
