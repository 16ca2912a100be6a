"""Hostile apps and HR systems (issue 24): credentials stay with their origin, answers and
listings are bounded, one stuck app delays only itself, SCIM filters and paths cannot be bent,
and a replayed webhook notice is applied once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from provisioner.engine.config.schema import TargetConfig
from provisioner.engine.kit.http import resilient_client
from provisioner.engine.kit.limits import ResponseTooLarge
from provisioner.engine.kit.origin import CrossOrigin, UnsafePath, relative_path
from provisioner.engine.kit.paging import (
    LinkHeaderPaging,
    NextLinkPaging,
    OffsetPaging,
    PagingRunaway,
    collect,
    paginate,
)
from provisioner.engine.kit.servers import serve_asgi
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.notices import Notices
from provisioner.engine.runtime.priming import Primer
from provisioner.engine.runtime.webhooks import webhook_app
from provisioner.sources.greenhouse.emulator import GreenhouseState
from provisioner.sources.greenhouse.emulator import create_app as greenhouse_app
from provisioner.sources.webhooks import Replays, WebhookRejected, hmac_hex, verify
from provisioner.targets.scim import ScimTarget
from provisioner.targets.scim_guards import FilterValueRefused, ListingRunaway, eq
from tests.conftest import make_config
from tests.hostile_apps import Seen, huge_scim, lying_scim, paging_app, slow_scim

pytestmark = pytest.mark.fast

SECRET = "Bearer s3cret-token"


def scim_target(name: str, url: str, **settings: Any) -> ScimTarget:
    return ScimTarget.from_config(
        TargetConfig.model_validate({"name": name, "type": "scim", "base_url": url, **settings})
    )


@pytest.mark.parametrize("paging", [NextLinkPaging(items="items", next="next"), LinkHeaderPaging(items="items")])
async def test_a_cross_origin_next_page_receives_no_credentials(paging: NextLinkPaging | LinkHeaderPaging):
    elsewhere = Seen()
    with serve_asgi(paging_app(elsewhere, lambda r: None)) as attacker:
        home = Seen()
        with serve_asgi(paging_app(home, lambda r: f"{attacker.url}/steal")) as app:
            async with resilient_client(app.url, headers={"Authorization": SECRET}, app="source hr") as client:
                pages = paginate(client, "/people", paging)
                with pytest.raises(CrossOrigin, match="source hr: refused to send credentials"):
                    await collect(pages)
    assert home.requests == [("GET", "/people", SECRET)]
    assert elsewhere.requests == []  # not even a request without the token


async def test_a_repeated_cursor_and_a_page_limit_end_a_listing():
    seen = Seen()
    with serve_asgi(paging_app(seen, lambda r: f"{r.base_url}people?cursor=same")) as app:
        async with resilient_client(app.url) as client:
            with pytest.raises(PagingRunaway, match="already sent"):
                await collect(paginate(client, "/people", NextLinkPaging(items="items", next="next")))
            assert len(seen.requests) == 2  # the first page and the cursor once; never the loop
            seen.requests.clear()
            with pytest.raises(PagingRunaway, match="passed 5 pages"):
                pages = paginate(client, "/people", OffsetPaging(items="items", limit=1), max_pages=5)
                await collect(pages)
            assert len(seen.requests) == 5


async def test_an_answer_over_the_cap_is_refused_as_it_streams():
    seen = Seen()
    with serve_asgi(huge_scim(seen)) as app:
        async with resilient_client(app.url, app="target big", max_response=1 << 20) as client:
            started = time.monotonic()
            with pytest.raises(ResponseTooLarge, match="target big: the answer to GET /Users is larger than"):
                await client.get("/Users")
            assert time.monotonic() - started < 10  # stopped after about 1 MB, not 300
        seen.release.set()


async def test_a_lying_total_results_stops_at_max_pages_and_ids_cannot_climb_out():
    seen = Seen()
    with serve_asgi(lying_scim(seen)) as app:
        target = scim_target("liar", app.url, token="t0ken", max_pages=5)
        try:
            match = "target liar: listing Groups would take 1,000,000,000 pages, over 5 pages"
            with pytest.raises(ListingRunaway, match=match):
                _ = [a async for a in target.list_accounts()]
            # refused on the first page's promise: no page beyond it was asked for
            assert sum(1 for _, path, _ in seen.requests if path.endswith("/Groups")) == 1
            seen.requests.clear()
            result = await target.delete("../../x")
            assert result.status.value == "failure" and "refused a path" in str(result.error)
            assert seen.requests == []  # nothing was sent, with or without the token
        finally:
            await target.aclose()


async def test_a_slow_huge_or_endless_target_does_not_delay_a_healthy_one(scim_server):
    slow_seen, huge_seen, liar_seen = Seen(), Seen(), Seen()
    with (
        serve_asgi(slow_scim(slow_seen)) as slow_app,
        serve_asgi(huge_scim(huge_seen)) as huge_app,
        serve_asgi(lying_scim(liar_seen)) as liar_app,
    ):
        targets = {
            "healthy": scim_target("healthy", scim_server.url),
            "slow": scim_target("slow", slow_app.url, timeout=30, max_attempts=1),
            "huge": scim_target("huge", huge_app.url, max_response_bytes=1 << 20, max_attempts=1),
            "endless": scim_target("endless", liar_app.url, max_pages=10_000),
        }
        primer = Primer(budget=1.5)
        try:
            started = time.monotonic()
            stuck = await primer.prime(targets, dict.fromkeys(targets, 1000))
            elapsed = time.monotonic() - started
            assert elapsed < 3.0, elapsed  # the budget, not the slow app's 30 s
            assert "healthy" not in stuck and targets["healthy"].accounts.index is not None  # listed in time
            assert "slow" in stuck and "slow" in primer.stalled and "healthy" not in primer.stalled
            # The next batches do not wait for the listing still running: only a new one gets a budget.
            started = time.monotonic()
            assert "slow" in await primer.prime(targets, dict.fromkeys(targets, 1000))
            assert time.monotonic() - started < 1.0
        finally:
            slow_seen.release.set()
            huge_seen.release.set()
            await primer.aclose()
            for target in targets.values():
                await target.aclose()


def test_scim_filter_values_are_escaped_and_control_characters_refused():
    assert eq("userName", 'a"b\\c') == r'userName eq "a\"b\\c"'
    assert eq("displayName", 'x" or userName pr or "') == r'displayName eq "x\" or userName pr or \""'
    for bad in ("a\nb", "a\rb", "a\x00b", "a\x1b[31mb"):
        with pytest.raises(FilterValueRefused, match="control characters"):
            eq("userName", bad)


async def test_a_replayed_signed_notice_is_applied_once(tmp_path):
    state = GreenhouseState()
    cid = state.seed(1)[0]
    with serve_asgi(greenhouse_app(state)) as server:
        keys = {"api_key": state.api_key, "webhook_secret": state.webhook_secret}
        source = {"name": "gh", "type": "greenhouse", "base_url": server.url, "version": "v1", **keys}
        runtime = Runtime(make_config(f"sqlite:///{tmp_path}/gh.db", "http://127.0.0.1:9", source))
        transport = httpx.ASGITransport(app=webhook_app(runtime))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
                body, headers = state.webhook("candidate_hired", cid)
                assert (await client.post("/webhooks/gh", content=body, headers=headers)).status_code == 202
                # The same signed body again, under a new (unsigned) Greenhouse-Event-ID, or none.
                for event_id in ("another-id", None):
                    replay = {k: v for k, v in headers.items() if k != "Greenhouse-Event-ID"}
                    if event_id:
                        replay["Greenhouse-Event-ID"] = event_id
                    assert (await client.post("/webhooks/gh", content=body, headers=replay)).status_code == 401
                unsigned = await client.post("/webhooks/gh", content=b"{}" * 10)
                assert unsigned.status_code == 401  # refused on its headers, before its body is read
                deadline = time.monotonic() + 10
                while not runtime.store.outbox.unpublished(limit=10):
                    assert time.monotonic() < deadline, "the notice was never applied"
                    await asyncio.sleep(0.05)
                assert [row.worker_id for row in runtime.store.outbox.unpublished(limit=10)] == [f"gh:{cid}"]
        finally:
            await runtime.parts.aclose()


def test_a_workable_notice_without_an_id_is_known_by_its_digest():
    body = b'{"event_type":"candidate_moved","data":{"id":"c1"}}'
    headers = {"x-workable-signature": hmac_hex("k", body)}
    replays = Replays()
    assert verify("workable", "k", headers, body, replays) == ["c1"]
    with pytest.raises(WebhookRejected, match="replay"):
        verify("workable", "k", headers, body, replays)


def test_deeply_nested_json_is_a_rejection_not_a_crash():
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(WebhookRejected, match="not JSON"):
        verify("lever", "k", {}, body, Replays())


async def test_notices_for_one_source_coalesce_and_fetches_are_capped():
    running, most, calls = 0, 0, []
    gate = asyncio.Event()

    async def fetch(source: str, ids: list[str]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        calls.append((source, ids))
        await gate.wait()
        running -= 1

    notices = Notices(fetch, cap=2)
    for _ in range(300):  # 300 replays of one notice while the first fetch runs
        notices.add("hr", ["42"])
    for source in ("a", "b", "c", "d"):
        notices.add(source, ["1"])
    await asyncio.sleep(0.1)
    assert most == 2  # the cap, whatever number of sources have notices
    gate.set()
    await notices.settled()
    assert [c for c in calls if c[0] == "hr"] == [("hr", ["42"])] * len([c for c in calls if c[0] == "hr"])
    assert len([c for c in calls if c[0] == "hr"]) <= 2  # one fetch, plus at most one for what came meanwhile
    assert len(calls) <= 6


@pytest.mark.parametrize(
    "path", ["Users/../../x", "Users/..", "Users/%2e%2e/x", "Users/a%2Fb", "Users/a\\b", "Users/a?b"]
)
def test_a_path_built_from_an_app_id_cannot_climb_or_change_the_request(path: str):
    with pytest.raises(UnsafePath, match="target t: refused a path"):
        relative_path("target t", path)


def test_a_configured_rest_path_may_keep_its_query_but_not_climb():
    assert relative_path("target t", "users/42?expand=groups", query=True) == "users/42?expand=groups"
    with pytest.raises(UnsafePath):
        relative_path("target t", "users/../admin?x=1", query=True)
