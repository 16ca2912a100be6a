"""The REST writer with the `zendesk-users` preset (OAuth client credentials, cursor paging, 422 on
a taken email, delete), and the 429 storm for both presets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from provisioner.engine.config import Config, TargetConfig
from provisioner.engine.contracts.models import Worker
from provisioner.engine.kit.servers import BackgroundServer, serve_asgi
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.memory_bus import MemoryBus
from provisioner.sources.lever import users_emulator as lever_users
from provisioner.targets.emulators import zendesk_users
from provisioner.targets.rest import RestTarget
from tests.test_end_to_end import sync, write
from tests.test_rest_lever import person
from tests.test_rest_lever import target_config as lever_config

pytestmark = pytest.mark.fast


@pytest.fixture
def zendesk_state() -> zendesk_users.ZendeskState:
    return zendesk_users.ZendeskState()


@pytest.fixture
def zendesk(zendesk_state: zendesk_users.ZendeskState) -> Iterator[BackgroundServer]:
    with serve_asgi(zendesk_users.create_app(zendesk_state)) as server:
        yield server


def zendesk_config(url: str, **extra: object) -> dict:
    return {
        "name": "zendesk",
        "type": "rest",
        "preset": "zendesk-users",
        "base_url": f"{url}/api/v2",
        "auth": {
            "type": "oauth_client_credentials",
            "token_url": f"{url}/oauth/tokens",
            "client_id": "provisioner",
            "client_secret": "zendesk-client-secret",
        },
        **extra,
    }


async def test_hire_adopt_suspend_and_delete_through_the_engine(tmp_path, zendesk, zendesk_state):
    zendesk_state.users[7] = {
        "id": 7,
        "name": "Someone",
        "email": "p0@example.com",
        "role": "agent",
        "external_id": None,
        "active": True,
        "suspended": True,
    }
    people = tmp_path / "people.json"
    write(people, *[person(i) for i in range(4)])
    config = Config.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "sources": [{"name": "hr", "type": "file", "path": str(people)}],
            "targets": [zendesk_config(zendesk.url, on_terminate="delete", on_leave="disable")],
            "policies": [{"name": "all", "when": "true", "grant": [{"target": "zendesk"}]}],
            "safety": {"max_deprovision_ratio": None},  # two of four leaving at once is this test's point
        }
    )
    async with Runtime(config, bus=MemoryBus()) as runtime:
        await sync(runtime)
        assert runtime.totals.failed == 0, runtime.totals.failures
        users = {u["email"]: u for u in zendesk_state.users.values()}
        assert len(users) == 4 and users["p0@example.com"]["id"] == 7  # 422 "taken" → adopted
        assert users["p0@example.com"]["suspended"] is False and users["p0@example.com"]["name"] == "P0 Lee"
        assert users["p2@example.com"]["external_id"] == "hr:2" and users["p2@example.com"]["role"] == "agent"
        assert zendesk_state.token_requests == 1  # one token, reused until it nears expiry

        write(people, person(0), person(1, status="on_leave"), person(2, status="terminated"), person(3))
        await sync(runtime)
        users = {u["email"]: u for u in zendesk_state.users.values()}
        assert users["p1@example.com"]["suspended"] is True and users["p1@example.com"]["active"] is True
        assert users["p2@example.com"]["active"] is False  # deleted


async def test_listing_follows_the_next_links(zendesk, zendesk_state):
    for i in range(1, 251):
        zendesk_state.users[i] = {
            "id": i,
            "name": f"U{i}",
            "email": f"u{i}@x.com",
            "active": True,
            "suspended": i % 2 == 0,
        }
    target = RestTarget.from_config(TargetConfig.model_validate(zendesk_config(zendesk.url)))
    accounts = [a async for a in target.list_accounts()]
    await target.aclose()
    assert [a.id for a in accounts] == [str(i) for i in range(1, 251)]
    assert sum(a.active for a in accounts) == 125
    assert len(zendesk_state.gate.accepted) == 3


@pytest.mark.parametrize("preset", ["lever-users", "zendesk-users"])
async def test_a_429_storm_is_waited_out_and_no_request_exceeds_the_limit(preset):
    if preset == "lever-users":
        state, app = lever_users.LeverUsersState(), lever_users.create_app
        make = lever_config
    else:
        state, app = zendesk_users.ZendeskState(), zendesk_users.create_app
        make = zendesk_config
    with serve_asgi(app(state)) as server:  # type: ignore[arg-type]
        target = RestTarget.from_config(TargetConfig.model_validate(make(server.url)))
        state.gate.storm = 6
        workers = [
            Worker(id=f"hr:{i}", source="hr", remote_id=str(i), work_email=f"w{i}@example.com") for i in range(30)
        ]
        results = await asyncio.gather(
            *(target.create(w, {"name": f"W {i}", "email": w.work_email}) for i, w in enumerate(workers))
        )
        await target.aclose()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert len(state.users) == 30
    assert state.gate.rejected == 6  # the storm only: our own bucket never trips the server's limit
    assert state.gate.max_in_any_second() <= state.gate.rate + state.gate.burst


async def test_wrong_client_secret_is_one_clear_error(zendesk, zendesk_state):
    config = zendesk_config(zendesk.url)
    config["auth"]["client_secret"] = "nope"
    target = RestTarget.from_config(TargetConfig.model_validate(config))
    result = await target.create(Worker(id="hr:1", source="hr", remote_id="1"), {"name": "A", "email": "a@x.com"})
    await target.aclose()
    assert not result.ok and "refused the client credentials" in (result.error or "")
    assert "nope" not in (result.error or "") and zendesk_state.token_requests == 1
    with httpx.Client(base_url=zendesk.url) as client:  # and nothing was written
        assert client.get("/api/v2/users.json").status_code == 401
