"""Failed writes are never dropped: durable retry state, `failures`, `retry`, honest exit codes.

Real parts throughout: the embedded broker, scim2-server over HTTP, the CLI as an operator runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.kit.servers import BackgroundServer, free_port, scim_app, serve_wsgi
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store
from tests.conftest import in_flight, scim_users
from tests.conftest import person as conftest_person
from tests.processes import engine, wait_for

runner = CliRunner()
TOKEN = "s3cret-token"


def person(i: int, **kw: Any) -> dict[str, Any]:
    return conftest_person(i, **{"title": "Engineer", "department": "Engineering" if i % 2 else "Sales", **kw})


def write_config(path: Path, store_url: str, people: Path, target: dict[str, Any], **extra: Any) -> Path:
    path.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                "engine": {"concurrency": 8, **extra.pop("engine", {})},
                "sources": [{"name": "hr", "type": "file", "path": str(people)}],
                "targets": [{"name": "app", "type": "scim", "max_attempts": 2, **target}],
                "policies": [
                    {"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]},
                    {
                        "name": "engineering",
                        "when": "worker.department == 'Engineering'",
                        "grant": [{"target": "app", "groups": ["eng"]}],
                    },
                ],
                **extra,
            }
        )
    )
    return path


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def failures(config: Path) -> list[dict[str, Any]]:
    result = cli("failures", "-c", str(config), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


class _TokenGate:
    """A SCIM app that wants one bearer token, counting every request it receives."""

    def __init__(self, inner: Any, token: str):
        self.inner, self.token, self.requests = inner, token, 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.requests += 1
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.token}":
            body = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "401"})
            start_response("401 Unauthorized", [("Content-Type", "application/scim+json")])
            return [body.encode()]
        return self.inner(environ, start_response)


@pytest.fixture
def gated() -> Iterator[tuple[BackgroundServer, _TokenGate]]:
    gate = _TokenGate(scim_app(), TOKEN)
    with serve_wsgi(gate) as server:
        yield server, gate


def test_wrong_token_dead_letters_at_once_and_retry_all_heals(tmp_path, gated):
    server, gate = gated
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(i) for i in range(6)]))
    store_url = f"sqlite:///{tmp_path / 's.db'}"
    config = write_config(tmp_path / "c.yaml", store_url, people, {"base_url": server.url, "token": "wrong"})

    synced = cli("sync", "-c", str(config))
    assert synced.exit_code == 1, synced.output
    assert "6 dead letters" in synced.output and "provisioner failures" in synced.output
    assert gate.requests <= 6 + 3, gate.requests  # no retry storm: about one request per person
    items = failures(config)
    assert [(f["worker"], f["state"], f["attempts"], f["action"]) for f in items] == [
        (f"hr:{i}", "dead", 1, "create") for i in range(6)
    ]
    assert all("401" in f["last_error"] and f["next_retry"] is None for f in items)
    assert TOKEN not in synced.output and "wrong" not in json.dumps(items)

    # A new process sees the same: the store is the truth, not the (in-memory) broker's DLQ topic.
    status = cli("status", "-c", str(config), "--json")
    assert status.exit_code == 1
    summary = json.loads(status.stdout)
    assert summary["failures"]["app"]["dead"] == 6 and summary["failures"]["app"]["retrying"] == 0
    assert "401" in summary["failures"]["app"]["latest_error"]
    assert {"sources", "unapplied_events", "scheduled", "next_scheduled"} <= set(summary)
    again = cli("sync", "-c", str(config))
    assert again.exit_code == 1 and "6 dead letters" in again.output  # an earlier run's dead letters count

    write_config(config, store_url, people, {"base_url": server.url, "token": TOKEN})
    healed = cli("retry", "-c", str(config), "--all")
    assert healed.exit_code == 0, healed.output
    assert "6 applied, 0 still failing" in healed.output
    assert failures(config) == []
    users = {u["externalId"]: u for u in scim_users(httpx.Client(base_url=server.url, headers=_auth()))}
    assert sorted(users) == [f"hr:{i}" for i in range(6)]
    assert _members(server.url, "staff") == {users[f"hr:{i}"]["id"] for i in range(6)}
    assert _members(server.url, "eng") == {users[f"hr:{i}"]["id"] for i in (1, 3, 5)}
    assert cli("status", "-c", str(config)).exit_code == 0
    assert cli("sync", "-c", str(config)).exit_code == 0
    log = Store(store_url).log.recent(limit=200)
    retries = [e for e in log if e.action == "retry"]
    assert {e.result for e in retries} == {"dead", "success"}
    assert all(e.attributes["attempt"] in (1, 2) for e in retries)
    # the success of a dead letter a person retried never claims "after 0 failed attempts"
    healed_rows = [e for e in retries if e.result == "success"]
    assert healed_rows and all(e.reason == "applied when a person retried the dead letter" for e in healed_rows)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _members(url: str, group: str) -> set[str]:
    with httpx.Client(base_url=url, headers=_auth()) as client:
        found = client.get("/Groups", params={"filter": f'displayName eq "{group}"'}).json()["Resources"]
    return {m["value"] for m in found[0].get("members") or []} if found else set()


def test_target_down_retries_survive_a_restart_and_a_termination_meanwhile_wins(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(1), person(2)]))
    store_url = f"sqlite:///{tmp_path / 's.db'}"
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    config = write_config(
        tmp_path / "c.yaml", store_url, people, {"base_url": down}, retry={"attempts": 5, "initial": "1h"}
    )

    first = cli("sync", "-c", str(config))
    assert first.exit_code == 1 and "2 retrying" in first.output, first.output
    items = failures(config)
    assert [(f["worker"], f["state"], f["attempts"]) for f in items] == [
        ("hr:1", "retrying", 1),
        ("hr:2", "retrying", 1),
    ]
    assert all(f["next_retry"] for f in items)

    # A restart (another process, another in-memory broker): the retries are still there, not yet due.
    second = cli("sync", "-c", str(config))
    assert second.exit_code == 1 and "2 retrying" in second.output
    assert [f["attempts"] for f in failures(config)] == [1, 1]

    # hr:2 is terminated while their create waits; then the target is back.
    people.write_text(json.dumps([person(1), person(2, status="terminated", termination_date="2026-01-31")]))
    write_config(config, store_url, people, {"base_url": scim_server.url}, retry={"attempts": 5, "initial": "1h"})
    third = cli("sync", "-c", str(config))  # hr:2's change settles hr:2; hr:1 still waits for its time
    assert third.exit_code == 1 and "1 retrying" in third.output, third.output
    assert [f["worker"] for f in failures(config)] == ["hr:1"]
    assert scim_users(scim) == []  # never created, let alone active

    healed = cli("retry", "-c", str(config), "--worker", "hr:1")
    assert healed.exit_code == 0, healed.output
    users = scim_users(scim)
    assert [(u["externalId"], u["active"]) for u in users] == [("hr:1", True)]
    assert _plain_members(scim, "staff") == {users[0]["id"]} and _plain_members(scim, "eng") == {users[0]["id"]}
    assert failures(config) == [] and cli("sync", "-c", str(config)).exit_code == 0


def _plain_members(scim: httpx.Client, group: str) -> set[str]:
    found = scim.get("/Groups", params={"filter": f'displayName eq "{group}"'}).json()["Resources"]
    return {m["value"] for m in found[0].get("members") or []} if found else set()


def test_failure_rows_schedule_backoff_dead_letter_and_clear(store_url):
    store = Store(store_url)
    store.failures.retry = store.failures.retry.model_copy(update={"attempts": 3, "initial": 10.0, "max": 15.0})
    worker = Worker.model_validate({**person(1), "id": "hr:1", "source": "hr"})
    event = change_event("hr", None, None, worker)

    def outcome(transient: bool | None) -> EventOutcome:
        done = EventOutcome(f"{event.id}-{transient}-{len(store.log.recent(limit=100))}", event)
        in_flight(store, done.event_id)  # a retry of the event, as the outbox holds it
        if transient is None:
            done.settled = ["*", "app"]
        else:
            done.fail("app", "create", "SCIM error 503: busy", transient)
        return done

    record(store, [outcome(True)])
    [first] = store.failures.all()
    assert (first.state, first.attempts) == ("retrying", 1)
    assert first.next_at is not None
    assert timedelta(seconds=5) <= first.next_at - first.last_at <= timedelta(seconds=10)  # half to full step
    record(store, [outcome(True)])
    [second] = store.failures.all()
    assert second.attempts == 2 and second.next_at is not None
    assert timedelta(seconds=7.5) <= second.next_at - second.last_at <= timedelta(seconds=15)  # capped at max
    assert second.first_at == first.first_at
    record(store, [outcome(True)])
    [third] = store.failures.all()
    assert (third.state, third.attempts, third.next_at) == ("dead", 3, None)  # attempts exhausted

    assert store.failures.take(lambda ids: [], now=third.last_at + timedelta(days=1)) == []  # dead is never due
    record(store, [outcome(None)])
    assert store.failures.all() == []
    log = [e for e in store.log.recent(limit=100) if e.action == "retry"]
    assert [(e.result, e.attributes["attempt"]) for e in log] == [
        ("retrying", 1),
        ("retrying", 2),
        ("dead", 3),
        ("success", 4),
    ]

    record(store, [outcome(False)])
    [permanent] = store.failures.all()
    assert (permanent.state, permanent.attempts) == ("dead", 1)  # a permanent failure is dead at once
    store.close()


def test_run_retries_by_itself_once_the_target_is_back(tmp_path):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(1), person(2)]))
    store_url = f"sqlite:///{tmp_path / 's.db'}"
    port = free_port()  # the target is down until something listens here
    config = write_config(
        tmp_path / "c.yaml",
        store_url,
        people,
        {"base_url": f"http://127.0.0.1:{port}"},
        retry={"initial": "0.5s", "max": "1s", "attempts": 100},
        engine={"listen": f"127.0.0.1:{free_port()}"},
    )
    store = Store(store_url)
    with engine(config, tmp_path / "run.log") as process:
        wait_for(lambda: len(store.failures.all()) == 2, what="both creates to fail and wait for a retry")
        assert {f.state for f in store.failures.all()} == {"retrying"}
        with serve_wsgi(scim_app(), port=port) as server:
            wait_for(lambda: store.failures.all() == [] and len(store.links.all()) == 2, what="the retries to heal")
            assert process.poll() is None
            with httpx.Client(base_url=server.url) as client:
                assert sorted(u["externalId"] for u in scim_users(client)) == ["hr:1", "hr:2"]
    healed = [e for e in store.log.recent(limit=500) if e.action == "retry" and e.result == "success"]
    assert sorted(e.worker_id for e in healed) == ["hr:1", "hr:2"]
    store.close()
