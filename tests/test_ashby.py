"""The Ashby connector against its emulator over real HTTP: cursor paging, the syncToken change
feed (and the full re-sync an expired token forces), hires as pre-hires, errors in 200 answers,
429s, and signed webhooks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.kit.emulation import RateGate
from provisioner.engine.kit.servers import serve_asgi
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.webhooks import webhook_app
from provisioner.sources import build_source
from provisioner.sources.ashby.connector import AshbySource
from provisioner.sources.ashby.emulator import AshbyState, create_app
from provisioner.sources.webhooks import Replays, WebhookRejected, hmac_hex, verify
from tests.conftest import make_config
from tests.flow import until

pytestmark = pytest.mark.fast

PERSON = {"first_name": "Ada", "last_name": "Lovelace", "personal_email": "ada@mail.example"}


@pytest.fixture
def ashby() -> Iterator[tuple[AshbyState, str]]:
    state = AshbyState()
    state.gate = RateGate(rate=1000.0, burst=1000)  # the paging tests are not about the limit
    with serve_asgi(create_app(state)) as server:
        yield state, server.url


def hires(state: AshbyState, count: int) -> list[str]:
    """Hired applications without Faker (its import alone would slow these fast tests)."""
    return [state.hire(first_name=f"Person{n}", last_name="Test", personal_email=f"p{n}@mail.example",
                       start_date="2027-01-04") for n in range(count)]  # fmt: skip


def connect(state: AshbyState, url: str, **settings: Any) -> AshbySource:
    source = build_source("ashby", "ashby", {"base_url": url, "api_key": state.api_key, "backoff": 0.01,
                                             "rate_limit": "500/s", "page_size": 3, **settings})  # fmt: skip
    assert isinstance(source, AshbySource)
    return source


def rpc(state: AshbyState, url: str, endpoint: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    # verify=False: plain HTTP to the emulator, and loading a CA bundle per call costs 0.2 s
    return httpx.post(f"{url}/{endpoint}", json=body, auth=(key or state.api_key, ""), verify=False)


async def test_a_hired_application_is_a_pending_worker_with_offer_job_and_places(ashby):
    state, url = ashby
    hired = state.hire(**PERSON, title="Data Engineer", department="Data", location="Lisbon", country="PT",
                       commitment="Contractor", start_date="2027-03-01")  # fmt: skip
    interviewing = state.hire(**{**PERSON, "personal_email": "bob@mail.example"}, status="Active")
    source = connect(state, url)
    read = await source.read({})
    await source.aclose()
    assert [w.remote_id for w in read.workers] == [hired] and interviewing not in read.gone
    worker = read.workers[0]
    assert (worker.first_name, worker.last_name, worker.personal_email) == ("Ada", "Lovelace", "ada@mail.example")
    assert worker.status.value == "pending" and worker.start_date == date(2027, 3, 1)
    assert (worker.title, worker.department, worker.location) == ("Data Engineer", "Data", "Lisbon")
    assert worker.employment_type is not None and worker.employment_type.value == "contractor"
    assert worker.country is None  # Ashby's address spells the country out ("Portugal")
    assert worker.custom["hiring_manager_email"] == "hanna.manager@acme.example"
    assert read.complete and read.cursor["mode"] == "full" and read.cursor["sync_token"]


def test_pages_follow_next_cursor_and_only_the_last_one_carries_the_sync_token(ashby):
    state, url = ashby
    hires(state, 7)
    pages, cursor = [], None
    while True:
        page = rpc(state, url, "application.list", {"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        pages.append(page)
        if not page["moreDataAvailable"]:
            break
        cursor = page["nextCursor"]
    assert [len(p["results"]) for p in pages] == [3, 3, 1]
    assert ["syncToken" in p for p in pages] == [False, False, True] and "nextCursor" not in pages[-1]
    capped = rpc(state, url, "application.list", {"limit": 500}).json()
    assert capped["success"] and len(capped["results"]) == 7  # a larger limit is capped, not refused


async def test_the_sync_token_lists_only_changes_and_an_archived_hire_is_gone_at_once(ashby):
    state, url = ashby
    ids = hires(state, 7)
    source = connect(state, url)
    first = await source.read({})
    state.change(ids[0], start_date="2027-02-01")
    state.remove(ids[1])  # archived after the hire: the pre-hire ends
    second = await source.read(first.cursor)
    third = await source.read(second.cursor)
    await source.aclose()
    assert len(first.workers) == 7
    assert second.cursor["mode"] == "incremental" and not second.complete
    assert [w.remote_id for w in second.workers] == [ids[0]] and second.workers[0].start_date == date(2027, 2, 1)
    assert second.gone == [ids[1]]
    assert second.cursor["sync_token"] != first.cursor["sync_token"]
    assert third.workers == [] and third.gone == [] and third.cursor["mode"] == "incremental"


async def test_an_expired_sync_token_means_a_full_resync(ashby, caplog):
    state, url = ashby
    ids = hires(state, 4)
    source = connect(state, url)
    first = await source.read({})
    state.remove(ids[2])
    state.expire_sync_tokens()
    with caplog.at_level(logging.WARNING, logger="provisioner.sources"):
        second = await source.read(first.cursor)
    state.change(ids[0], start_date="2027-05-01")
    third = await source.read(second.cursor)
    await source.aclose()
    assert "syncToken expired; reading everything again" in caplog.text
    # A full read: complete, so the archived one is a removal by absence, and a fresh token.
    assert second.complete and second.cursor["mode"] == "full" and second.gone == []
    assert sorted(w.remote_id for w in second.workers) == sorted(set(ids) - {ids[2]})
    assert third.cursor["mode"] == "incremental" and [w.remote_id for w in third.workers] == [ids[0]]


async def test_a_due_full_read_ignores_the_sync_token(ashby):
    state, url = ashby
    hires(state, 2)
    source = connect(state, url, full_read_every="1h")
    first = await source.read({})
    stale = {**first.cursor, "last_full_read": (datetime.now(UTC) - timedelta(hours=2)).isoformat()}
    again = await source.read(stale)
    await source.aclose()
    assert again.complete and again.cursor["mode"] == "full" and len(again.workers) == 2


async def test_one_record_for_a_webhook_and_gone_once_archived(ashby):
    state, url = ashby
    ids = hires(state, 2)
    source = connect(state, url)
    one = await source.fetch_one(ids[0])
    state.remove(ids[0])
    archived = await source.fetch_one(ids[0])
    unknown = await source.fetch_one("no-such-application")
    await source.aclose()
    assert [w.remote_id for w in one.workers] == [ids[0]] and one.workers[0].status.value == "pending"
    assert archived.gone == [ids[0]] and unknown.gone == ["no-such-application"]


def test_webhook_signature_good_bad_and_the_records_named(ashby):
    state, _url = ashby
    aid = hires(state, 1)[0]
    body, headers = state.webhook("candidateHire", aid)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["ashby-signature"].startswith("sha256=")
    assert verify("ashby", state.webhook_secret, lowered, body, Replays()) == [aid]
    with pytest.raises(WebhookRejected, match="signature"):
        verify("ashby", "another-secret", lowered, body, Replays())
    with pytest.raises(WebhookRejected, match="signature"):
        verify("ashby", state.webhook_secret, lowered, body.replace(aid.encode(), b"x" * len(aid)), Replays())
    with pytest.raises(WebhookRejected, match="sha256"):
        verify("ashby", state.webhook_secret, {"ashby-signature": lowered["ashby-signature"][7:]}, body, Replays())
    offer = b'{"action":"offerUpdate","data":{"offer":{"id":"o1","applicationId":"a-7"}}}'
    signed = {"ashby-signature": f"sha256={hmac_hex(state.webhook_secret, offer)}"}
    assert verify("ashby", state.webhook_secret, signed, offer, Replays()) == ["a-7"]
    ping = b'{"action":"ping","data":{"webhookActionType":"ping"}}'
    assert verify("ashby", state.webhook_secret, {"ashby-signature": f"sha256={hmac_hex(state.webhook_secret, ping)}"},
                  ping, Replays()) == []  # fmt: skip


async def test_refusals_in_200_answers_are_one_clear_line(ashby):
    state, url = ashby
    hires(state, 1)
    source = connect(state, url)
    with pytest.raises(SourceError, match=r"Ashby refused job.info: invalid_input \(id is required\)"):
        await source.call("job.info", {})
    assert await source.call("job.info", {"id": "gone"}, missing_ok=True) is None
    await source.aclose()
    wrong = rpc(state, url, "application.list", {}, key="wrong-key")
    assert wrong.status_code == 403 and wrong.json()["success"] is False
    missing = httpx.post(f"{url}/application.list", json={}, verify=False)
    assert missing.status_code == 401
    malformed = httpx.post(f"{url}/application.list", content=b"{", auth=(state.api_key, ""),
                           headers={"Content-Type": "application/json"}, verify=False)  # fmt: skip
    assert malformed.status_code == 200 and malformed.json()["errorInfo"]["code"] == "invalid_input"


def test_429_carries_retry_after_and_the_documented_error_code(ashby):
    state, url = ashby
    hires(state, 2)
    state.gate.storm = 1
    throttled = rpc(state, url, "application.list", {})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
    assert throttled.json()["errorInfo"]["code"] == "rate_limit_exceeded"
    # The connector waiting it out is the contract suite's storm test.


async def test_a_signed_hire_reaches_the_engine_and_its_archival_removes_the_prehire(ashby, tmp_path):
    state, url = ashby
    config = make_config(f"sqlite:///{tmp_path}/ashby.db", "http://127.0.0.1:9", {
        "name": "ats", "type": "ashby", "base_url": url, "api_key": state.api_key,
        "webhook_secret": state.webhook_secret, "backoff": 0.01})  # fmt: skip
    runtime = Runtime(config)
    transport = httpx.ASGITransport(app=webhook_app(runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as engine:
            aid = hires(state, 1)[0]
            body, headers = state.webhook("candidateHire", aid)
            forged = await engine.post("/webhooks/ats", content=body, headers={"Ashby-Signature": "sha256=00"})
            assert forged.status_code == 401
            assert (await engine.post("/webhooks/ats", content=body, headers=headers)).status_code == 202
            await until(lambda: runtime.store.snapshots.get(f"ats:{aid}") is not None, "the hire's snapshot")
            assert runtime.store.snapshots.get(f"ats:{aid}").status.value == "pending"
            state.remove(aid)  # archived after the hire, and Ashby says so
            body, headers = state.webhook("applicationUpdate", aid)
            assert (await engine.post("/webhooks/ats", content=body, headers=headers)).status_code == 202
            await until(lambda: runtime.store.snapshots.get(f"ats:{aid}") is None, "the pre-hire's removal")
    finally:
        await runtime.parts.aclose()


async def test_check_reads_one_application_and_one_offer_and_names_a_missing_permission(ashby):
    state, url = ashby
    hires(state, 3)
    source = connect(state, url)
    before = state.faults.requests
    assert await source.check() == "credentials accepted"
    assert state.faults.requests - before == 2  # not a page of hires' details
    state.forbidden = {"/offer.list"}
    with pytest.raises(SourceError, match=r"denied access \(HTTP 403\).*missing_endpoint_permission"):
        await source.check()
    await source.aclose()


async def test_a_token_expiring_between_pages_restarts_the_listing_without_doubles(ashby):
    state, url = ashby
    ids = hires(state, 5)
    source = connect(state, url)
    first = await source.read({})
    for aid in ids:  # two pages of changes, so the feed needs a follow-up page
        state.change(aid, start_date="2027-06-01")
    state.expire_mid_listing = True  # between the feed's first page and its second
    second = await source.read(first.cursor)
    await source.aclose()
    assert second.complete and second.cursor["mode"] == "full" and not second.quarantined
    assert sorted(w.remote_id for w in second.workers) == sorted(ids)
