"""What `store.access` lists as access not removed, from the store alone (so every replica says the
same): a mover's unremoved group is a membership, not their account; a leaver whose change could
not even be planned keeps every active account."""

from __future__ import annotations

import pytest

from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome, Link, LogEntry
from provisioner.engine.runtime.apply import failed_event
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store

pytestmark = pytest.mark.fast


def worker(**kw: str) -> Worker:
    return Worker(id="hr:1", source="hr", remote_id="1", first_name="Ada", **kw)


def recorded(store: Store, now: Worker, *, links: list[Link], log: list[LogEntry], fail: tuple[str, str]) -> None:
    event = change_event("hr", None, None, now)
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", [now])
        store.outbox.enqueue(s, [event])
    outcome = EventOutcome(event.id, event)
    outcome.links, outcome.log = links, log
    outcome.fail(*fail, "SCIM error 400: refused", False)
    record(store, [outcome])


def test_a_movers_unremoved_group_is_a_membership_not_the_account(store_url: str):
    store = Store(store_url)
    mover = worker(department="Sales")
    link = Link(worker_id="hr:1", target="app", account_id="u-1", groups=["staff", "eng"])
    refused = LogEntry(
        worker_id="hr:1", target="app", action="remove_groups", attributes={"groups": ["eng"]}, result="failure"
    )
    recorded(store, mover, links=[link], log=[refused], fail=("app", "remove_groups"))
    [kept] = store.access.not_removed()
    assert (kept.worker_id, kept.target, kept.remains) == ("hr:1", "app", ["member of eng"])
    assert store.access.unreadable_holders() == []


def test_a_leaver_whose_change_could_not_be_planned_keeps_every_active_account(store_url: str):
    store = Store(store_url)
    links = [
        Link(worker_id="hr:1", target="app", account_id="u-1"),
        Link(worker_id="hr:1", target="wiki", account_id="w-1", active=False),
    ]
    recorded(store, worker(), links=links, log=[], fail=("app", "update"))
    assert store.access.not_removed() == []  # an update failed; nobody left
    leaver = worker(status="terminated")
    event = change_event("hr", None, None, leaver)
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", [leaver])
        store.outbox.enqueue(s, [event])
    record(store, [failed_event(event, "plan", "the policies could not be evaluated", "boom")])
    [kept] = store.access.not_removed()
    assert (kept.worker_id, kept.target, kept.remains, kept.error) == ("hr:1", "app", ["account u-1"], "boom")
