"""Creates coalesced into SCIM /Bulk requests, against a real scim2-server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter

import httpx
import pytest
from scim2_models import BulkRequest

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Outcome, ResultStatus, Worker
from provisioner.engine.kit.coalesce import Coalescer
from provisioner.rules.planner import TargetSpec
from provisioner.targets.scim import ScimTarget
from provisioner.targets.scim_bulk import BULK_SCHEMA
from provisioner.targets.scim_support import DEFAULT_MAPPING
from tests.conftest import scim_users


def _worker(i: int) -> Worker:
    return Worker(
        id=f"hr:{i}",
        source="hr",
        remote_id=str(i),
        first_name=f"F{i}",
        last_name=f"L{i}",
        work_email=f"u{i}@example.com",
        status="active",
    )


def _target(url: str, **settings: object) -> tuple[ScimTarget, Counter[str]]:
    target = ScimTarget.from_config(
        TargetConfig.model_validate({"name": "app", "type": "scim", "base_url": url, **settings})
    )
    calls: Counter[str] = Counter()

    async def count(request: httpx.Request) -> None:
        calls[f"{request.method} {request.url.path.rsplit('/', 1)[-1]}"] += 1

    target.http.event_hooks["request"].append(count)
    return target, calls


async def test_concurrent_creates_share_bulk_requests(scim_server, scim):
    spec = TargetSpec.compile("app", "disable", DEFAULT_MAPPING)
    target, calls = _target(scim_server.url, bulk_max_operations=10)
    operations_per_bulk: list[int] = []

    async def bulk_size(request: httpx.Request) -> None:
        if request.url.path.endswith("/Bulk"):
            operations_per_bulk.append(len(json.loads(request.content)["Operations"]))

    target.http.event_hooks["request"].append(bulk_size)
    scim.post("/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u3@example.com"})
    workers = [_worker(i) for i in range(25)]
    results = await asyncio.gather(*(target.create(w, spec.render(w)) for w in workers))
    await target.aclose()

    # 25 creates, at most 10 per request, and batched: how often the linger timer splits a batch
    # depends on the machine's load, so the bound is loose (it is 3 or 4 on a quiet machine).
    sizes = operations_per_bulk
    assert sum(sizes) == 25 and max(sizes) <= 10 and calls["POST Users"] == 0
    assert 3 <= len(sizes) <= 8
    # The existing userName is reported as a conflict for the adopt path, the rest are created.
    assert results[3].status is ResultStatus.skipped and results[3].outcome is Outcome.conflict
    created = [r for i, r in enumerate(results) if i != 3]
    assert all(r.ok and r.account_id for r in created)
    users = {u["userName"]: u["id"] for u in scim_users(scim)}
    assert len(users) == 25
    assert {users[f"u{i}@example.com"] for i in range(25) if i != 3} == {r.account_id for r in created}


async def test_bulk_off_posts_each_user(scim_server, scim):
    spec = TargetSpec.compile("app", "disable", DEFAULT_MAPPING)
    target, calls = _target(scim_server.url, bulk=False)
    await asyncio.gather(*(target.create(w, spec.render(w)) for w in map(_worker, range(4))))
    await target.aclose()
    assert calls["POST Users"] == 4 and calls["POST Bulk"] == 0
    assert len(scim_users(scim)) == 4


async def test_coalescer_batches_and_reports_errors_to_every_caller():
    sent: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        if 13 in items:
            raise RuntimeError("boom")
        return [i * 2 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(send, max_items=4, linger=0.01)
    answers = await asyncio.gather(*(coalescer.submit(i) for i in range(10)), return_exceptions=True)
    assert answers == [i * 2 for i in range(10)]
    assert [len(b) for b in sent] == [4, 4, 2]
    failed = await asyncio.gather(coalescer.submit(12), coalescer.submit(13), return_exceptions=True)
    assert all(isinstance(a, RuntimeError) for a in failed)
    with pytest.raises(RuntimeError):
        await coalescer.submit(13)


async def test_serial_coalescer_sends_one_batch_at_a_time_and_gathers_the_rest():
    sizes: list[int] = []
    in_flight = 0

    async def send(items: list[int]) -> list[None]:
        nonlocal in_flight
        in_flight += 1
        assert in_flight == 1
        sizes.append(len(items))
        await asyncio.sleep(0.02)
        in_flight -= 1
        return [None] * len(items)

    coalescer: Coalescer[int, None] = Coalescer(send, max_items=100, linger=0.001, serial=True)
    first = asyncio.ensure_future(coalescer.submit(0))
    await asyncio.sleep(0.005)  # the first batch is on its way; these 30 wait for it and go together
    await asyncio.gather(first, *(coalescer.submit(i) for i in range(1, 31)))
    assert sizes == [1, 30]


async def test_match_email_adopts_an_account_with_another_username(scim_server, scim):
    existing = scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada.l",
            "emails": [{"value": "U1@example.com"}],
        },
    ).json()
    spec = TargetSpec.compile("app", "disable", DEFAULT_MAPPING)
    worker = _worker(1)
    plain, _ = _target(scim_server.url)
    assert await plain.lookup(worker, None, spec.render(worker)) is None
    matching, _ = _target(scim_server.url, match_email=True)
    found = await matching.lookup(worker, None, spec.render(worker))
    await matching.prime(100)  # and the same through the listing index
    indexed = await matching.lookup(worker, None, spec.render(worker))
    await plain.aclose()
    await matching.aclose()
    assert found is not None and indexed is not None and found.id == indexed.id == existing["id"]


def test_the_writer_leaves_scim2_models_unimported_until_a_message_needs_it():
    """Importing scim2-models costs a third of a second, which a sync with nothing to write should
    not pay; so the /Bulk schema URN is written out, and must stay the one scim2-models sends."""
    probe = "import sys, provisioner.targets.scim; print('scim2_models' in sys.modules)"
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "False"
    assert str(BulkRequest.__schema__) == BULK_SCHEMA
