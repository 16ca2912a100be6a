"""Every vendor connector against its emulator over real HTTP: paging, rate limits, 5xx bursts,
bad credentials, quarantine, incremental reads, removals and webhook signatures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.kit.servers import serve_asgi
from provisioner.engine.runtime.poller import diff
from provisioner.sources import build_source
from provisioner.sources.webhooks import Replays, WebhookRejected, verify
from tests.source_harness import HARNESSES, Harness

PEOPLE = 7  # three pages of three


@pytest.fixture(params=HARNESSES, ids=str)
def vendor(request: pytest.FixtureRequest) -> Iterator[tuple[Harness, Any, list[str], str]]:
    harness: Harness = request.param
    state = harness.make_state()
    ids = state.seed(PEOPLE)
    with harness.serve(state) if harness.serve else serve_asgi(harness.make_app(state)) as server:
        yield harness, state, ids, server.url


def connect(harness: Harness, state: Any, url: str, **overrides: Any) -> Any:
    return build_source(harness.type, harness.type, {**harness.settings(url, state), **overrides})


async def test_multi_page_read_within_the_rate_limit(vendor):
    harness, state, ids, url = vendor
    source = connect(harness, state, url)
    read = await source.read({})
    await source.aclose()
    assert sorted(w.remote_id for w in read.workers) == sorted(ids) and read.complete
    assert not read.quarantined
    assert state.gate.rejected == 0  # the client paced itself: not one request over the limit
    people = {w.remote_id: w for w in read.workers}
    sample = people[ids[1]]
    assert sample.first_name and sample.title and sample.department
    if harness.type not in ("workday", "bamboohr", "adp", "successfactors"):  # ATS hires are pre-hires
        assert sample.status.value == "pending" and sample.personal_email


async def test_rate_limit_storm_and_5xx_burst_are_recovered(vendor):
    harness, state, _ids, url = vendor
    source = connect(harness, state, url)
    state.gate.storm = 2
    state.faults.fail_next, state.faults.fail_status = 2, 503
    read = await source.read({})
    await source.aclose()
    assert len(read.workers) == PEOPLE
    assert state.gate.rejected == 2 and state.gate.storm == 0  # only the forced 429s, then none


async def test_bad_credentials_are_one_clear_error_without_retries(vendor):
    harness, state, _ids, url = vendor
    source = connect(harness, state, url, **harness.bad_credentials)
    before = state.faults.requests
    with pytest.raises(SourceError, match=r"refused the (credentials|client credentials)") as caught:
        await source.read({})
    await source.aclose()
    assert state.faults.requests - before <= 1  # a token endpoint refusal never reaches the API
    for secret in harness.bad_credentials.values():
        for value in secret.values() if isinstance(secret, dict) else [secret]:
            assert value not in str(caught.value)


async def test_missing_permission_is_one_clear_error_and_the_read_stops(vendor):
    harness, state, _ids, url = vendor
    if not harness.forbid:
        pytest.skip(f"{harness} has no per-endpoint permissions to withhold")
    state.forbidden = {harness.forbid}
    source = connect(harness, state, url)
    with pytest.raises(SourceError, match=r"denied access \(HTTP 403\).*permission or scope"):
        await source.read({})
    await source.aclose()
    # never retried; at most the detail requests already in flight met the 403
    assert 1 <= state.denials <= source.settings.concurrency


async def test_malformed_record_is_quarantined_and_the_rest_flows(vendor):
    harness, state, ids, url = vendor
    harness.corrupt(state, ids[2])
    source = connect(harness, state, url)
    read = await source.read({})
    await source.aclose()
    assert [q.remote_id for q in read.quarantined] == [ids[2]]
    assert len(read.workers) == PEOPLE - 1
    # a quarantined record is still there: it must not look like a removal
    before = {f"{harness.type}:{i}": ("old", w) for i, w in zip(ids, [None] * len(ids), strict=True)}
    assert (
        f"{harness.type}:{ids[2]}" not in diff(harness.type, read, {k: v for k, v in before.items() if v[1]}).removals
    )


async def test_incremental_read_then_full_read_detects_removal(vendor):
    harness, state, ids, url = vendor
    source = connect(harness, state, url)
    first = await source.read({})
    harness.change(state, ids[0])
    second = await source.read(first.cursor)
    assert not second.complete and second.cursor["mode"] == "incremental"
    assert ids[0] in {w.remote_id for w in second.workers}
    snapshots = {w.id: (w.content_hash(), w) for w in first.workers}
    changed = diff(harness.type, second, dict(snapshots))
    assert f"{harness.type}:{ids[0]}" in {e.subject for e in changed.events} and not changed.removals
    state.remove(ids[1])
    full = await source.read({})  # a full read (the periodic one) finds who is gone
    await source.aclose()
    removed = diff(harness.type, full, dict(snapshots))
    assert removed.removals == [f"{harness.type}:{ids[1]}"]


async def test_single_record_fetch_agrees_with_the_listing(vendor):
    harness, state, ids, url = vendor
    source = connect(harness, state, url)
    listed = {w.remote_id: w for w in (await source.read({})).workers}
    one = await source.fetch_one(ids[3])
    state.remove(ids[4])
    gone = await source.fetch_one(ids[4])
    await source.aclose()
    assert one.workers == [listed[ids[3]]] and not one.complete
    if harness.scoped_fetch:
        assert gone.gone == [ids[4]] and not gone.workers


@pytest.mark.parametrize("harness", [h for h in HARNESSES if h.webhook and not h.label], ids=str)
def test_webhook_signature_accepted_tampering_and_replay_rejected(harness: Harness):
    state = harness.make_state()
    rid = state.seed(1)[0]
    body, headers = harness.webhook(state, rid)
    headers = {k.lower(): v for k, v in headers.items()}
    replays = Replays()
    assert verify(harness.type, state.webhook_secret, headers, body, replays) == [rid]
    with pytest.raises(WebhookRejected, match="replay"):
        verify(harness.type, state.webhook_secret, headers, body, replays)
    fresh_body, fresh_headers = harness.webhook(state, rid)
    fresh_headers = {k.lower(): v for k, v in fresh_headers.items()}
    with pytest.raises(WebhookRejected, match="signature"):
        verify(harness.type, "not-the-secret", fresh_headers, fresh_body, Replays())
    if harness.type == "lever":
        # Lever signs token + triggeredAt only, so what guards it is freshness and the token cache.
        with pytest.raises(WebhookRejected, match="away from now"):
            verify("lever", state.webhook_secret, fresh_headers, fresh_body, Replays(), now=time.time() + 600)
    else:
        tampered = fresh_body.replace(rid.encode(), b"someone-else", 1)
        with pytest.raises(WebhookRejected, match="signature"):
            verify(harness.type, state.webhook_secret, fresh_headers, tampered, Replays())


async def test_expired_paging_cursor_restarts_from_the_checkpoint(caplog):
    from provisioner.sources.lever.emulator import LeverState, create_app

    state = LeverState()
    ids = state.seed(PEOPLE)
    with serve_asgi(create_app(state)) as server:
        source = build_source(
            "lever",
            "lever",
            {
                "base_url": f"{server.url}/v1",
                "api_key": state.api_key,
                "page_size": 3,
                "backoff": 0.01,
                "overlap": "0s",
            },
        )
        first = await source.read({})
        for rid in ids[:5]:  # two pages of changes, so the read needs a follow-up page
            state.change(rid, name="Someone Changed")
        state.expire_next_cursor = True
        with caplog.at_level("WARNING", logger="provisioner.paging"):
            second = await source.read(first.cursor)
        await source.aclose()
    assert len(first.workers) == PEOPLE and state.generation == 1
    assert "restarting the listing from the last checkpoint" in caplog.text  # not from zero
    assert second.cursor["mode"] == "incremental"
    assert sorted(w.remote_id for w in second.workers) == sorted(ids[:5])


async def test_a_failed_poll_leaves_snapshot_cursor_and_outbox_untouched(tmp_path):
    from provisioner.engine.runtime.usecases.ingest import ingest as poll
    from provisioner.engine.store import Store
    from provisioner.sources.lever.emulator import LeverState, create_app

    store = Store(f"sqlite:///{tmp_path / 'poll.db'}")
    state = LeverState()
    ids = state.seed(3)
    with serve_asgi(create_app(state)) as server:
        source = build_source(
            "lever",
            "lever",
            {"base_url": f"{server.url}/v1", "api_key": state.api_key, "backoff": 0.01, "max_attempts": 3},
        )
        await poll(source, store)
        cursor, snapshots, queued = (
            store.snapshots.cursor("lever"),
            store.snapshots.of_source("lever"),
            store.outbox.pending_count(),
        )
        state.change(ids[0], name="Changed Name")
        state.faults.fail_next = 99  # the vendor is down for longer than the retries last
        with pytest.raises(SourceError, match="HTTP 500"):
            await poll(source, store)
        await source.aclose()
    assert store.snapshots.cursor("lever") == cursor and store.snapshots.of_source("lever") == snapshots
    assert store.outbox.pending_count() == queued == 3
