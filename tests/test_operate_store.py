"""The store's queries behind the console and the API, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome, Link, LogEntry, utcnow
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store

pytestmark = pytest.mark.fast


def person(n: int, first: str, last: str, email: str, **kw) -> Worker:  # type: ignore[no-untyped-def]
    return Worker(id=f"hr:{n}", source="hr", remote_id=str(n), first_name=first, last_name=last, work_email=email, **kw)


def test_search_log_filters_counts_and_reports(store_url: str):
    store = Store(store_url)
    people = [
        person(1, "Ada", "Lovelace", "ada@example.com", department="Engineering"),
        person(2, "Grace", "Hopper", "grace@example.com", title="Ada Programme Lead"),
        person(3, "José", "Núñez", "jose@example.com"),
    ]
    events = [change_event("hr", None, None, w) for w in people]
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", people)
        store.outbox.enqueue(s, events)

    assert [w.id for w in store.search.workers("ada")] == ["hr:1"]  # a title is not searched
    assert [w.id for w in store.search.workers("HOPPER")] == ["hr:2"]
    assert [w.id for w in store.search.workers("hr:3")] == ["hr:3"]
    assert [w.id for w in store.search.workers("núñez")] == ["hr:3"]
    assert [w.id for w in store.search.workers("")] == ["hr:1", "hr:2", "hr:3"]
    assert store.search.workers("%") == [] and store.search.workers("_") == []  # not wildcards
    assert [w.id for w in store.search.workers("example.com", limit=2, page=1)] == ["hr:1", "hr:2"]

    outcomes = []
    for event, (target, result, active) in zip(
        events, [("app", "success", True), ("app", "failure", True), ("wiki", "success", False)], strict=True
    ):
        outcome = EventOutcome(event.id, event)
        if result == "success":
            outcome.links.append(Link(worker_id=event.subject, target=target, account_id=event.subject, active=active))
        outcome.log.append(
            LogEntry(event_id=event.id, worker_id=event.subject, target=target, action="create", result=result)
        )
        outcomes.append(outcome)
    record(store, outcomes)

    assert [e.worker_id for e in store.search.log(result="failure")] == ["hr:2"]
    assert [e.worker_id for e in store.search.log(target="app")] == ["hr:1", "hr:2"]
    assert [e.worker_id for e in store.search.log(worker="hr:3")] == ["hr:3"]
    assert store.search.log(since=utcnow() + timedelta(minutes=1)) == []
    assert len(store.search.log(since=utcnow() - timedelta(minutes=5))) == 3
    assert [e.worker_id for e in store.search.log(limit=1)] == ["hr:3"]  # the newest

    assert store.search.accounts_by_target() == {
        "app": {"active": 1, "disabled": 0},
        "wiki": {"active": 0, "disabled": 1},
    }
    last = store.search.last_results()
    assert last["app"]["result"] == "failure" and last["wiki"]["result"] == "success"

    assert store.reports.latest("reconcile") is None
    store.reports.save("reconcile", {"summary": {"app": {"confirmed": 1}}, "items": []})
    store.reports.save("reconcile", {"summary": {"app": {"missing": 1}}, "items": []})
    at, body = store.reports.latest("reconcile")  # type: ignore[misc]
    assert body["summary"] == {"app": {"missing": 1}} and at.tzinfo is not None

    before = store.outbox.pending_count()
    store.outbox.add([change_event("hr", people[0], None, people[0].model_copy(update={"title": "CTO"}))])
    assert store.outbox.pending_count() == before + 1
    store.close()
