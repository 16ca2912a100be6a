"""Whole path over the real embedded broker (Tansu) and a real scim2-server over HTTP."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from pathlib import Path
from typing import Any

import httpx

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.records import LogEntry
from provisioner.engine.runtime.app import Runtime
from tests.conftest import make_config, scim_users

DEPT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"

ADA = {
    "remote_id": "1",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "work_email": "ada@example.com",
    "title": "Engineer",
    "department": "Engineering",
    "employment_type": "full_time",
    "status": "active",
}
BOB = {
    "remote_id": "2",
    "first_name": "Bob",
    "last_name": "Builder",
    "work_email": "bob@example.com",
    "title": "Foreman",
    "department": "Sales",
    "employment_type": "full_time",
    "status": "active",
}


def write(path: Path, *workers: dict[str, Any]) -> None:
    path.write_text(json.dumps(list(workers)))


def by_external_id(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {u["externalId"]: u for u in scim_users(client)}


async def sync(runtime: Runtime) -> int:
    result = await runtime.poll("hr")
    await runtime.wait_idle(timeout=60)
    return len(result.events)


def entries_since(runtime: Runtime, after: int) -> list[LogEntry]:
    return [e for e in runtime.store.log.recent(limit=1000) if (e.id or 0) > after]


async def test_lifecycle_hire_move_terminate_and_idempotent_repoll(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    write(people, ADA)
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}", scim_server.url, {"name": "hr", "type": "file", "path": str(people)}
    )
    async with Runtime(config) as runtime:
        assert await sync(runtime) == 1
        ada = by_external_id(scim)["hr:1"]
        assert ada["userName"] == "ada@example.com"
        assert ada["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
        assert ada["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"] == "Engineering"
        assert ada["active"] is True
        staff = scim.get("/Groups", params={"filter": 'displayName eq "staff"'}).json()["Resources"][0]
        assert [m["value"] for m in staff["members"]] == [ada["id"]]

        # department change → one PATCH of that attribute only
        mark = runtime.store.log.recent(limit=1)[-1].id or 0
        write(people, {**ADA, "department": "Research"})
        assert await sync(runtime) == 1
        updates = [e for e in entries_since(runtime, mark) if e.action == "update"]
        assert [u.attributes for u in updates] == [{DEPT: "Research"}]
        moved = by_external_id(scim)["hr:1"]
        assert moved["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"] == "Research"
        assert moved["title"] == "Engineer" and moved["id"] == ada["id"]

        # the same poll twice → no events, no duplicate users
        assert await sync(runtime) == 0
        assert len(scim_users(scim)) == 1

        # termination → active false, nothing deleted
        write(people, {**ADA, "department": "Research", "status": "terminated", "termination_date": "2026-01-31"})
        assert await sync(runtime) == 1
        assert by_external_id(scim)["hr:1"]["active"] is False

        # rehire → the same account enabled again
        write(people, {**ADA, "department": "Research"})
        assert await sync(runtime) == 1
        users = scim_users(scim)
        assert len(users) == 1 and users[0]["active"] is True and users[0]["id"] == ada["id"]
    assert runtime.totals.failed == 0


async def test_stopped_between_publish_and_apply_applies_exactly_once(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    write(people, ADA, BOB)
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}", scim_server.url, {"name": "hr", "type": "file", "path": str(people)}
    )
    # First engine: publishes but never consumes, then stops (as if it died before applying).
    async with Runtime(config, consume=False) as first:
        await first.poll("hr")
        for _ in range(200):
            if not first.store.outbox.unpublished(10):
                break
            await asyncio.sleep(0.05)
        assert not first.store.outbox.unpublished(10), "the relay should have published both events"
        assert first.store.outbox.pending_count() == 2
        published = [WorkerEvent.model_validate(r.payload) for r in _outbox(first)]
    assert scim_users(scim) == []

    # Second engine (a new embedded broker, so the events exist only in the outbox): re-published, applied once.
    async with Runtime(config) as second:
        await second.wait_idle(timeout=60)
        assert second.totals.applied == 2
        assert len(scim_users(scim)) == 2
        assert _outbox(second) == []  # applied events leave the outbox (their outcomes stay)
        # Delivered again once applied (Kafka delivers at least once): not in the outbox, so skipped.
        assert (await second.pipeline.submit(published)).skipped == 2
        # Made again (the same ids: a record changed back to what it was): planned again from what
        # the store holds, nothing left to write, and they leave the outbox.
        second.store.outbox.add(published)
        assert (await second.pipeline.submit(published)).skipped == 0
        await second.pipeline.drain(timeout=30)
        await second.wait_idle(timeout=30)
        assert _outbox(second) == []
        assert [e.action for e in second.store.log.recent(limit=100)].count("create") == 2
    assert len(scim_users(scim)) == 2


def _outbox(runtime: Runtime) -> list[Any]:
    from sqlmodel import select

    from provisioner.engine.store import OutboxEvent

    with runtime.store.db.session() as s:
        return list(s.exec(select(OutboxEvent)).all())


async def test_existing_account_with_same_username_is_adopted(tmp_path, scim_server, scim):
    existing = scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada@example.com",
            "title": "Old title",
        },
    ).json()
    people = tmp_path / "people.json"
    write(people, ADA)
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}", scim_server.url, {"name": "hr", "type": "file", "path": str(people)}
    )
    async with Runtime(config) as runtime:
        await sync(runtime)
        actions = [e.action for e in runtime.store.log.recent(limit=10)]
    users = scim_users(scim)
    assert len(users) == 1
    assert users[0]["id"] == existing["id"]
    assert users[0]["title"] == "Engineer" and users[0]["externalId"] == "hr:1"
    assert "adopt" in actions and "create" not in actions
    assert runtime.store.links.all()[0].account_id == existing["id"]


async def test_manager_is_written_as_the_managers_account_id(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    write(people, BOB, ADA | {"manager_id": "hr:2"})
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}", scim_server.url, {"name": "hr", "type": "file", "path": str(people)}
    )
    enterprise = DEPT.rsplit(":", 1)[0]
    async with Runtime(config) as runtime:
        await sync(runtime)
        write(people, BOB, ADA | {"manager_id": "hr:2", "title": "Principal Engineer"})
        await sync(runtime)  # by now Bob surely has an account, whatever order the first sync took
        users = by_external_id(scim)
        assert users["hr:1"][enterprise]["manager"]["value"] == users["hr:2"]["id"]
        write(people, BOB, ADA | {"manager_id": "hr:2", "title": "Principal Engineer", "department": "Research"})
        await sync(runtime)
        last = [e for e in runtime.store.log.recent("hr:1") if e.action == "update"][-1]
        assert set(last.attributes) == {DEPT}  # the resolved manager does not look changed


async def test_a_store_that_refuses_writes_for_a_while_loses_no_outcome_and_stops_no_relay(
    tmp_path, scim_server, scim, monkeypatch
):
    """SQLite busy past its timeout, PostgreSQL restarting or aborting a deadlock: the relay, the
    consumer and the outcome flusher try again instead of dying or leaving a batch behind, and
    nothing is applied twice or dropped."""
    from sqlalchemy.exc import OperationalError

    people = tmp_path / "people.json"
    write(people, ADA, BOB)
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}", scim_server.url, {"name": "hr", "type": "file", "path": str(people)}
    )
    # Set around the poll: its store calls run in a worker thread too, and see it (to_thread copies the context).
    polling = contextvars.ContextVar("polling", default=False)
    async with Runtime(config) as runtime:
        # The consumer's reads (what is applied, which links exist), its outcome writes, the relay's reads
        failures = {"applied": 1, "for_workers": 1, "confirm": 1, "unpublished": 1}
        store = runtime.store
        repositories = {"for_workers": store.links}
        for name in failures:
            repository = repositories.get(name, store.outbox)
            real = getattr(repository, name)

            def flaky(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
                # Only the engine's background calls, which run in worker threads: a poll's own reads
                # failing fail that poll, which is tested elsewhere.
                if failures[_name] and threading.current_thread() is not threading.main_thread() and not polling.get():
                    failures[_name] -= 1
                    raise OperationalError("statement", {}, Exception("database is locked"))
                return _real(*args, **kwargs)

            monkeypatch.setattr(repository, name, flaky)
        polling.set(True)
        assert len((await runtime.poll("hr")).events) == 2
        polling.set(False)
        await runtime.wait_idle(timeout=60)
        assert set(failures.values()) == {0}  # each failed once, for real
        assert runtime.totals.applied == 2
    assert len(scim_users(scim)) == 2


async def test_a_bug_while_planning_one_worker_fails_that_event_alone(tmp_path, scim_server, scim, monkeypatch):
    """A planner that raises something other than a policy error is a bug: the event is recorded as
    failed (and retried later), never dropped, and the other workers are applied."""
    people = tmp_path / "people.json"
    write(people, ADA, BOB)
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}", scim_server.url, {"name": "hr", "type": "file", "path": str(people)}
    )
    async with Runtime(config) as runtime:
        planner = runtime.pipeline.applier.planner
        real = planner.plan_gated  # the one planning call of the pipeline (approvals included)

        def buggy(event: WorkerEvent, *args: Any, **kwargs: Any) -> Any:
            if event.subject == "hr:2":
                raise KeyError("bug")
            return real(event, *args, **kwargs)

        monkeypatch.setattr(planner, "plan_gated", buggy)
        assert await sync(runtime) == 2
        assert (runtime.totals.applied, runtime.totals.failed) == (1, 1)
        failure = [e for e in runtime.store.log.recent("hr:2") if e.result == "failure"]
        assert [(e.action, e.reason) for e in failure] == [("apply", "internal error")]
    assert set(by_external_id(scim)) == {"hr:1"}
