"""The SCIM writer never turns a transient fault into a wrong answer (real scim2-server behind
tests/faultproxy.py): a failed /Bulk request sends its creates one by one, and a create whose
response was lost is found afresh on the server when its retry answers 409."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Outcome, ResultStatus, Worker
from provisioner.engine.kit.servers import BackgroundServer, serve_asgi
from provisioner.rules.planner import TargetSpec
from provisioner.targets.scim import ScimTarget
from provisioner.targets.scim_support import DEFAULT_MAPPING
from tests.conftest import scim_users
from tests.faultproxy import FaultProxy, fault_proxy

pytestmark = pytest.mark.fast

SPEC = TargetSpec.compile("app", "disable", DEFAULT_MAPPING)


def _worker(i: int) -> Worker:
    return Worker(
        id=f"hr:{i}", source="hr", remote_id=str(i), first_name=f"F{i}", last_name="L", work_email=f"u{i}@example.com"
    )


@pytest.fixture
def proxied(scim_server: BackgroundServer) -> Iterator[tuple[FaultProxy, str]]:
    proxy = fault_proxy(scim_server.url, share=1.0, kinds=("503",), fault_paths=("/Bulk",), retry_after=0)
    with serve_asgi(proxy) as front:
        yield proxy, front.url


def _target(url: str, **settings: object) -> tuple[ScimTarget, list[str]]:
    target = ScimTarget.from_config(
        TargetConfig.model_validate({"name": "app", "type": "scim", "base_url": url, "max_attempts": 2, **settings})
    )
    sent: list[str] = []

    async def note(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path.rsplit('/', 1)[-1]}")

    target.http.event_hooks["request"].append(note)
    return target, sent


async def test_a_failed_bulk_request_sends_its_creates_one_by_one(proxied, scim):
    proxy, url = proxied
    target, sent = _target(url, bulk_max_operations=20)
    proxy.open_window()
    workers = [_worker(i) for i in range(12)]
    results = await asyncio.gather(*(target.create(w, SPEC.render(w)) for w in workers))
    await target.aclose()
    assert [r.status for r in results] == [ResultStatus.success] * 12
    assert proxy.stats["503"] >= 1 and "POST Bulk" in sent  # /Bulk was tried, and failed as a whole
    assert sent.count("POST Users") == 12
    assert sorted(u["externalId"] for u in scim_users(scim)) == sorted(w.id for w in workers)


async def test_a_lost_create_response_is_adopted_from_the_server_not_a_stale_index(scim_server, scim):
    proxy = fault_proxy(scim_server.url, share=1.0, kinds=("forward_500",), fault_paths=("/Users",))
    with serve_asgi(proxy) as front:
        target, _ = _target(front.url, bulk=False, max_attempts=1)
        await target.prime(1000)  # a listing: the index says nobody exists yet
        ada = _worker(1)
        attributes = SPEC.render(ada)
        proxy.open_window()
        lost = await target.create(ada, attributes)
        proxy.close_window()
        assert lost.status is ResultStatus.failure and lost.transient  # created upstream, answer lost

        # The retry: the (still fresh) index knows nothing, the create answers 409, and the
        # lookup after it asks the server.
        assert await target.lookup(ada, None, attributes) is None
        retried = await target.create(ada, attributes)
        assert (retried.status, retried.outcome) == (ResultStatus.skipped, Outcome.conflict)
        found = await target.lookup(ada, None, attributes)
        await target.aclose()
    [user] = scim_users(scim)
    assert found is not None and found.id == user["id"]
