"""What is particular to one vendor: Workday's SOAP envelope and faults, Lever's rotating OAuth
refresh tokens, Workable's rate headers obeyed without a client-side limit, BambooHR's single fetch."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from lxml import etree

from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.kit.servers import serve_asgi
from provisioner.sources import build_source
from provisioner.sources.bamboohr.emulator import EmulatorState
from provisioner.sources.lever.emulator import LeverState
from provisioner.sources.lever.emulator import create_app as lever_app
from provisioner.sources.workable.emulator import WorkableState
from provisioner.sources.workable.emulator import create_app as workable_app
from provisioner.sources.workday.connector import NS, WSSE, envelope
from provisioner.sources.workday.emulator import WorkdayState
from provisioner.sources.workday.emulator import create_app as workday_app

pytestmark = pytest.mark.fast


def workday_source(url: str, state: WorkdayState, path: str = "/ccx/service/acme/Human_Resources/v40.0", **extra: Any):
    """The Workday connector pointed at an emulator, with the emulator's credentials."""
    settings = {"base_url": f"{url}{path}", "username": state.username, "password": state.password, **extra}
    return build_source("wd", "workday", settings)


def test_workday_envelope_carries_ws_security_paging_and_the_update_window():
    from datetime import UTC, datetime

    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    root = etree.fromstring(envelope("isu@acme", "s3cret", "v40.0", page=2, count=250, updated=(start, end)))
    token = root.find(f".//{{{WSSE}}}UsernameToken")
    assert token.findtext(f"{{{WSSE}}}Username") == "isu@acme"
    assert token.find(f"{{{WSSE}}}Password").get("Type").endswith("#PasswordText")
    assert root.find(f".//{{{WSSE}}}Security").get("{http://schemas.xmlsoap.org/soap/envelope/}mustUnderstand") == "1"
    request = root.find(".//wd:Get_Workers_Request", NS)
    assert request.get("{urn:com.workday/bsvc}version") == "v40.0"
    assert request.findtext("wd:Response_Filter/wd:Page", namespaces=NS) == "2"
    assert request.findtext("wd:Response_Filter/wd:Count", namespaces=NS) == "250"
    window = "wd:Request_Criteria/wd:Transaction_Log_Criteria_Data/wd:Transaction_Date_Range_Data/"
    assert request.findtext(window + "wd:Updated_From", namespaces=NS) == start.isoformat()


async def test_workday_future_termination_manager_and_a_hard_fault():
    state = WorkdayState()
    ids = state.seed(4)
    later = (date.today() + timedelta(days=10)).isoformat()
    state.terminate(ids[1], on=later)
    state.terminate(ids[2], on="2025-01-31")
    with serve_asgi(workday_app(state)) as server:
        source = workday_source(server.url, state, backoff=0.01)
        people = {w.remote_id: w for w in (await source.read({})).workers}
        before = state.faults.requests
        state.faults.fail_next, state.faults.fail_status = 99, 500
        with pytest.raises(SourceError, match="Workday fault SOAP-ENV:Server"):
            await source.read({})
        await source.aclose()
    leaving = people[ids[1]]
    assert leaving.status.value == "active" and str(leaving.termination_date) == later  # the policy layer schedules it
    assert people[ids[2]].status.value == "terminated"
    assert people[ids[3]].manager_id == f"wd:{ids[0]}" and people[ids[0]].manager_id is None
    assert people[ids[0]].work_email and len(people[ids[0]].country or "") == 2
    assert state.faults.requests - before == 5  # server faults are retried, boundedly


async def test_lever_oauth_refresh_tokens_rotate_and_survive_a_restart(tmp_path):
    state = LeverState()
    state.seed(2)
    token_file = tmp_path / "lever.token"
    with serve_asgi(lever_app(state)) as server:
        settings = {
            "base_url": f"{server.url}/v1",
            "backoff": 0.01,
            "auth": {
                "type": "oauth_refresh_token",
                "token_url": f"{server.url}/oauth/token",
                "client_id": state.client_id,
                "client_secret": state.client_secret,
                "refresh_token": "lever-refresh-0",
                "token_file": str(token_file),
            },
        }
        first = build_source("lever", "lever", settings)
        assert len((await first.read({})).workers) == 2
        await first.aclose()
        assert token_file.read_text() == state.refresh_token == "lever-refresh-1"
        assert token_file.stat().st_mode & 0o777 == 0o600
        # A restart with the (now void) refresh token from the config still works: the file wins.
        second = build_source("lever", "lever", settings)
        assert len((await second.read({})).workers) == 2
        await second.aclose()
        assert state.refresh_token == "lever-refresh-2"
        token_file.unlink()  # without the file, the voided token is refused, once and clearly
        third = build_source("lever", "lever", settings)
        with pytest.raises(SourceError, match="refused the refresh token"):
            await third.read({})
        await third.aclose()
        assert "lever-refresh" not in str(third.settings.auth.model_dump())


async def test_lever_access_token_is_renewed_before_it_expires():
    state = LeverState(token_lifetime=30)  # inside the client's one-minute renewal margin
    state.seed(2)
    with serve_asgi(lever_app(state)) as server:
        source = build_source(
            "lever",
            "lever",
            {
                "base_url": f"{server.url}/v1",
                "backoff": 0.01,
                "auth": {
                    "type": "oauth_refresh_token",
                    "token_url": f"{server.url}/oauth/token",
                    "client_id": state.client_id,
                    "client_secret": state.client_secret,
                    "refresh_token": state.refresh_token,
                },
            },
        )
        read = await source.read({})
        await source.aclose()
    assert len(read.workers) == 2
    assert state.expired_token_uses == 0  # renewed ahead of expiry every time, never refused
    assert int(state.refresh_token.rsplit("-", 1)[1]) == state.faults.requests  # one exchange per request


async def test_workable_rate_headers_are_obeyed_without_a_client_side_limit():
    state = WorkableState()
    state.gate.window = 2.0
    ids = state.seed(9)
    with serve_asgi(workable_app(state)) as server:
        # No client bucket worth the name: only X-Rate-Limit-Remaining/Reset keep it in bounds.
        source = build_source(
            "w",
            "workable",
            {
                "base_url": f"{server.url}/spi/v3",
                "token": state.token,
                "rate_limit": "1000/s",
                "burst": 1000,
                "concurrency": 1,
                "page_size": 5,
            },
        )
        read = await source.read({})
        await source.aclose()
    assert len(read.workers) == len(ids)
    assert state.gate.rejected == 0 and state.gate.max_in_any_window() <= 10


async def test_bamboohr_single_fetch_for_webhooks(bamboo, bamboo_state: EmulatorState):
    source = build_source(
        "bamboohr",
        "bamboohr",
        {"base_url": f"{bamboo.url}/api/gateway.php/acme", "api_key": bamboo_state.api_key, "backoff": 0.01},
    )
    some = next(iter(bamboo_state.employees))
    one = await source.fetch_one(some)
    gone = await source.fetch_one("999999")
    await source.aclose()
    assert [w.remote_id for w in one.workers] == [some] and not one.complete
    assert gone.gone == ["999999"] and not gone.workers


def test_emulator_admin_paths_hire_change_undo_terminate_and_faults():
    import httpx

    from provisioner.engine.sandbox.vendors import sandbox_app

    app, states = sandbox_app(people=1)
    with serve_asgi(app) as server:
        url = server.url
        oid = httpx.post(
            f"{url}/lever/_admin/hires",
            json={"first_name": "Ada", "last_name": "L", "personal_email": "ada@mail.example"},
        ).json()["id"]
        assert states["lever"].opportunities[oid]["archived"]
        assert httpx.patch(f"{url}/lever/_admin/people/{oid}", json={"name": "Ada Byron"}).status_code == 200
        assert states["lever"].opportunities[oid]["name"] == "Ada Byron"
        assert httpx.delete(f"{url}/lever/_admin/people/{oid}").status_code == 200
        assert states["lever"].opportunities[oid]["archived"] is None  # the hire is undone
        wid = next(iter(states["workday"].workers))
        assert httpx.post(f"{url}/workday/_admin/people/{wid}/terminate", json={"on": "2030-01-31"}).status_code == 200
        assert states["workday"].workers[wid]["termination_date"] == "2030-01-31"
        assert httpx.patch(f"{url}/workday/_admin/people/nobody", json={"title": "x"}).status_code == 404
        assert httpx.post(f"{url}/greenhouse/_admin/faults", json={"fail": 2, "storm": 1}).status_code == 200
        assert states["greenhouse"].faults.fail_next == 2 and states["greenhouse"].gate.storm == 1


async def test_workday_incremental_read_sees_a_termination_taking_effect_today():
    from datetime import UTC, datetime

    state = WorkdayState()
    ids = state.seed(3)
    with serve_asgi(workday_app(state)) as server:
        source = workday_source(server.url, state, path="/ccx/service/acme/Human_Resources", overlap="0s")
        first = await source.read({})
        # entered days ago (outside the Updated window), effective today: only the Effective window sees it
        state.workers[ids[1]].update(
            termination_date=date.today().isoformat(), updated=datetime.now(UTC) - timedelta(days=3)
        )
        second = await source.read(first.cursor)
        await source.aclose()
    assert second.cursor["mode"] == "incremental"
    assert [(w.remote_id, w.status.value) for w in second.workers] == [(ids[1], "terminated")]


async def test_workable_stage_is_a_display_name_and_the_filter_a_slug():
    """Workable's candidates carry the stage's display name; an account renamed "Hired"."""
    state = WorkableState()
    state.stages["hired"] = "Offer Accepted – Hired"
    ids = state.seed(3)
    state.remove(ids[2])  # back to the offer stage: no longer a hire
    with serve_asgi(workable_app(state)) as server:
        source = build_source("w", "workable", {"base_url": f"{server.url}/spi/v3", "token": state.token})
        try:
            read = await source.read({})
            one = await source.fetch_one(ids[0])
            gone = await source.fetch_one(ids[2])
        finally:
            await source.aclose()
    assert state.candidates[ids[0]]["stage"] == "Offer Accepted – Hired"
    assert sorted(w.remote_id for w in read.workers) == sorted(ids[:2])
    assert [w.remote_id for w in one.workers] == [ids[0]] and gone.gone == [ids[2]]


async def test_workday_worker_type_is_read_from_its_type_id_not_the_wid():
    state = WorkdayState()
    state.seed(6)
    with serve_asgi(workday_app(state)) as server:
        source = workday_source(server.url, state)
        try:
            read = await source.read({})
        finally:
            await source.aclose()
    expected = {"Regular": "full_time", "Part_Time": "part_time", "Contractor": "contractor", "Intern": "intern"}
    assert {w.remote_id: w.employment_type for w in read.workers} == {
        emp_id: expected[w["worker_type"]] for emp_id, w in state.workers.items()
    }
