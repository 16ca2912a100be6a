"""The webhook endpoint: a verified notice triggers a fetch of that one record into the same
diff as a poll; anything unverified is a bare 401 and changes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from provisioner.engine.kit.servers import serve_asgi
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.webhooks import webhook_app
from provisioner.sources.greenhouse.emulator import GreenhouseState
from provisioner.sources.greenhouse.emulator import create_app as greenhouse_app
from provisioner.sources.lever.emulator import LeverState
from provisioner.sources.lever.emulator import create_app as lever_app
from provisioner.sources.webhooks import Replays, WebhookRejected, hmac_hex, verify
from tests.conftest import make_config

pytestmark = pytest.mark.fast


async def until(condition, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
    return value


@pytest.fixture
async def lever_runtime(tmp_path) -> AsyncIterator[tuple[Runtime, LeverState, httpx.AsyncClient]]:
    state = LeverState()
    state.seed(2)
    with serve_asgi(lever_app(state)) as server:
        config = make_config(
            f"sqlite:///{tmp_path}/wh.db",
            "http://127.0.0.1:9",
            {
                "name": "ats",
                "type": "lever",
                "base_url": f"{server.url}/v1",
                "api_key": state.api_key,
                "webhook_secret": state.webhook_secret,
                "backoff": 0.01,
            },
        )
        runtime = Runtime(config)
        transport = httpx.ASGITransport(app=webhook_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
            yield runtime, state, client
        await runtime.parts.aclose()


def outbox_subjects(runtime: Runtime) -> list[str]:
    return [row.worker_id for row in runtime.store.outbox.unpublished(limit=100)]


async def test_signed_hire_is_fetched_into_the_outbox_and_the_cursor_stays(lever_runtime):
    runtime, state, client = lever_runtime
    oid = state.hire(first_name="Ada", last_name="Lovelace", personal_email="ada@mail.example", start_date="2027-01-04")
    body, headers = state.webhook("candidateHired", oid)
    answer = await client.post("/webhooks/ats", content=body, headers=headers)
    assert answer.status_code == 202
    assert await until(lambda: outbox_subjects(runtime)) == [f"ats:{oid}"]
    snapshot = runtime.store.snapshots.get(f"ats:{oid}")
    assert snapshot.first_name == "Ada" and str(snapshot.start_date) == "2027-01-04"
    assert runtime.store.snapshots.cursor("ats") == {}  # a webhook never moves the poll's cursor

    state.remove(oid)  # the hire is undone, and Lever says so
    body, headers = state.webhook("candidateArchiveChange", oid)
    assert (await client.post("/webhooks/ats", content=body, headers=headers)).status_code == 202
    await until(lambda: runtime.store.snapshots.get(f"ats:{oid}") is None)
    assert outbox_subjects(runtime) == [f"ats:{oid}", f"ats:{oid}"]


async def test_bad_signature_replay_and_unknown_source(lever_runtime):
    runtime, state, client = lever_runtime
    oid = next(iter(state.opportunities))
    body, headers = state.webhook("candidateHired", oid)
    forged = body.replace(b'"signature":"', b'"signature":"0', 1)
    answer = await client.post("/webhooks/ats", content=forged, headers=headers)
    assert answer.status_code == 401 and answer.text == "unauthorized"  # no detail for the sender
    assert (await client.post("/webhooks/ats", content=body, headers=headers)).status_code == 202
    assert (await client.post("/webhooks/ats", content=body, headers=headers)).status_code == 401  # replay
    assert (await client.post("/webhooks/nope", content=body, headers=headers)).status_code == 404
    await until(lambda: outbox_subjects(runtime))
    assert outbox_subjects(runtime) == [f"ats:{oid}"]


def test_bamboohr_signature_is_body_then_timestamp():
    body = b'{"type":"employee.updated","timestamp":"2026-01-31T18:42:00+0000","data":{"employeeId":"67890"}}'
    stamp = str(int(time.time()))
    headers = {"x-bamboohr-timestamp": stamp, "x-bamboohr-signature": hmac_hex("k", body + stamp.encode())}
    assert verify("bamboohr", "k", headers, body, Replays()) == ["67890"]
    with pytest.raises(WebhookRejected, match="signature"):
        verify("bamboohr", "k", {**headers, "x-bamboohr-signature": hmac_hex("k", body)}, body, Replays())
    old = str(int(time.time()) - 3600)
    with pytest.raises(WebhookRejected, match="replay"):
        verify(
            "bamboohr",
            "k",
            {"x-bamboohr-timestamp": old, "x-bamboohr-signature": hmac_hex("k", body + old.encode())},
            body,
            Replays(),
        )


async def test_greenhouse_unhire_webhook_removes_through_the_same_diff(tmp_path):
    state = GreenhouseState()
    cid = state.seed(1)[0]
    with serve_asgi(greenhouse_app(state)) as server:
        config = make_config(
            f"sqlite:///{tmp_path}/gh.db",
            "http://127.0.0.1:9",
            {
                "name": "gh",
                "type": "greenhouse",
                "base_url": server.url,
                "version": "v1",
                "api_key": state.api_key,
                "webhook_secret": state.webhook_secret,
                "backoff": 0.01,
            },
        )
        runtime = Runtime(config)
        await runtime.poll("gh")
        assert runtime.store.snapshots.get(f"gh:{cid}") is not None
        state.remove(cid)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=webhook_app(runtime)), base_url="http://engine"
        ) as client:
            body, headers = state.webhook("unhire_candidate", cid)
            assert (await client.post("/webhooks/gh", content=body, headers=headers)).status_code == 202
            await until(lambda: runtime.store.snapshots.get(f"gh:{cid}") is None)
        await runtime.parts.aclose()


def test_a_signed_but_unreadable_lever_timestamp_is_rejected_not_an_error():
    body = json.dumps(
        {"token": "t", "triggeredAt": "soon", "signature": hmac_hex("k", "tsoon"), "data": {"opportunityId": "o1"}}
    ).encode()
    with pytest.raises(WebhookRejected, match="unreadable triggeredAt"):
        verify("lever", "k", {}, body, Replays())
