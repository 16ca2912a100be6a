"""Each event is planned once, from links read once per batch (its workers' and the managers their
attributes name); the planner reads nothing itself. An event queued behind another of its worker is
planned when that one finished, from the links it left (and a manager's account made meanwhile)."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.engine.config import PolicyConfig
from provisioner.engine.contracts.events import WorkerEvent, change_event
from provisioner.engine.contracts.models import Account, Result, ResultStatus, Worker
from provisioner.engine.runtime.apply import Applier
from provisioner.engine.runtime.pipeline import Pipeline
from provisioner.engine.store import Store
from provisioner.rules.planner import Planner, TargetSpec
from provisioner.rules.policy import PolicySet

pytestmark = pytest.mark.fast

MANAGER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
MAPPING = {
    "userName": "{{ worker.work_email }}",
    "title": "{{ worker.title or '' }}",
    MANAGER: "{{ worker.manager_id }}",
}


class _App:
    """An app in memory: accounts by id, and the creates it was asked for."""

    name = "app"

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []

    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None:
        return None

    async def create(self, worker: Worker, attributes: dict[str, Any]) -> Result:
        account_id = f"u-{worker.id}"
        self.created.append(worker.id)
        self.accounts[account_id] = dict(attributes)
        return Result(status=ResultStatus.success, account_id=account_id, attributes=attributes)

    async def update(self, account_id: str, attributes: dict[str, Any], previous: Any = None) -> Result:
        self.accounts[account_id].update(attributes)
        return Result(status=ResultStatus.success, attributes=attributes)

    async def prime(self, expected_lookups: int) -> None:
        return None


def _hire(n: int, title: str, manager: int | None = None, previous: Worker | None = None) -> WorkerEvent:
    worker = Worker(
        id=f"hr:{n}",
        source="hr",
        remote_id=str(n),
        first_name=f"P{n}",
        work_email=f"p{n}@example.com",
        title=title,
        manager_id=f"hr:{manager}" if manager else None,
    )
    return change_event("hr", previous, previous.content_hash() if previous else None, worker)


async def test_each_event_is_planned_once_from_one_read_per_batch(store_url: str, monkeypatch: Any) -> None:
    store, app = Store(store_url), _App()
    policies = PolicySet.compile(
        [PolicyConfig.model_validate({"name": "all", "when": "true", "grant": [{"target": "app"}]})], ["app"]
    )
    planner = Planner(policies, [TargetSpec.compile("app", "disable", MAPPING)])
    plans: list[str] = []
    real_plan = planner.plan_gated
    monkeypatch.setattr(planner, "plan_gated", lambda ev, *a: plans.append(ev.subject) or real_plan(ev, *a))
    reads: list[set[str]] = []
    real_read = store.links.for_workers
    monkeypatch.setattr(store.links, "for_workers", lambda ids: reads.append(set(ids)) or real_read(ids))
    pipeline = Pipeline(Applier(planner, {"app": app}), store, concurrency=1, flush_interval=0.01)  # type: ignore[dict-item]

    ada = _hire(1, "a", manager=2)
    moved = _hire(1, "b", manager=2, previous=ada.data.worker)  # queued behind the hire: planned after it
    boss, later = _hire(2, "boss"), _hire(3, "c", manager=2)
    store.outbox.add([ada, boss, moved, later])  # as the poll wrote them
    await pipeline.submit([ada, boss, moved])
    await pipeline.drain(10)
    assert plans == ["hr:1", "hr:2", "hr:1"]  # once per event
    assert reads == [{"hr:1", "hr:2"}]  # one read for the batch: the workers and the manager they name
    assert app.created == ["hr:1", "hr:2"]  # the move is an update of the account its hire made
    assert app.accounts["u-hr:1"]["title"] == "b"
    assert app.accounts["u-hr:1"][MANAGER] == "u-hr:2"  # the manager's account, made before the move ran

    # A later batch names that manager: their account is read with the batch, and written at once.
    await pipeline.submit([later])
    await pipeline.drain(10)
    assert reads[1:] == [{"hr:3", "hr:2"}]
    assert app.accounts["u-hr:3"][MANAGER] == "u-hr:2"
    assert store.references.waiting("hr:3") == []
    await pipeline.aclose()
    store.close()
