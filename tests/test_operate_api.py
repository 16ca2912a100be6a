"""The operations surface of a real `provisioner run` over HTTP: auth, every API endpoint's shape,
resume and poll doing what the CLI does, CSRF on console POSTs, metrics after a sync with one
failure, and JSON log lines that carry the event id."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from provisioner.engine.kit.servers import free_port
from provisioner.engine.store import Store
from tests.ops_harness import TOKEN, Engine, engine, refusing_scim, write_config
from tests.processes import wait_for


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("operate")
    with refusing_scim() as scim, engine(tmp, write_config(tmp, scim.url)) as eng:
        api = eng.api()
        # The first poll runs at start: two people get accounts, the third is refused by the app.
        wait_for(lambda: len(api.get("/log").json()) >= 3, 60, "first sync applied")
        wait_for(lambda: api.get("/status").json()["unapplied_events"] == 0, 30, "outbox drained")
        yield eng


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_api_needs_the_bearer_token(running: Engine):
    for client in (running.api(token=None), running.api(token="wrong-token")):
        answer = client.get("/status")
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert client.post("/sources/hr/resume").status_code == 401
    assert running.api().get("/status").status_code == 200
    assert TOKEN not in running.log_file.read_text()  # never logged


def test_health_readiness_and_openapi(running: Engine):
    assert httpx.get(f"{running.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{running.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "store": True, "broker": True, "recording": True, "progress": True}
    document = httpx.get(f"{running.url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    for path in ("/status", "/workers/{worker_id}", "/log", "/failures/retry", "/sources/{name}/resume", "/plan"):
        assert path in document["paths"], path
    assert "Status" in document["components"]["schemas"]


def test_every_read_endpoint_has_its_shape(running: Engine):
    api = running.api()
    status = api.get("/status").json()
    assert {"sources", "unapplied_events", "scheduled", "next_scheduled", "failures", "quarantined"} <= set(status)
    [source] = status["sources"]
    assert source["source"] == "hr" and source["workers"] == 3 and source["halted"] is False
    assert source["last_poll"].endswith("Z") or source["last_poll"].endswith("+00:00")

    [target] = api.get("/targets").json()
    assert target["target"] == "app" and target["accounts_active"] == 2

    found = api.get("/workers", params={"q": "hopper"}).json()
    assert [w["id"] for w in found] == ["hr:1002"]
    assert [w["id"] for w in api.get("/workers", params={"q": "ada.lovelace@"}).json()] == ["hr:1001"]
    assert api.get("/workers", params={"q": "engineering"}).json() == []  # a department is not searched

    detail = api.get("/workers/hr:1001").json()
    assert detail["targets"]["app"]["in_scope"] is True
    assert detail["targets"]["app"]["policies"][0]["policy"] == "everyone"
    assert detail["links"][0]["target"] == "app" and detail["log"][0]["action"] == "create"
    assert api.get("/workers/hr:nobody").status_code == 404

    failed = api.get("/log", params={"result": "failure"}).json()
    assert [(e["worker_id"], e["target"], e["action"]) for e in failed] == [("hr:1003", "app", "create")]
    assert len(api.get("/log", params={"target": "app", "limit": 2}).json()) == 2
    assert api.get("/log", params={"since": "2999-01-01T00:00:00Z"}).json() == []
    assert api.get("/log", params={"result": "bogus"}).status_code == 422
    # the CLI's filters, read the same way: an age, and every result the log holds
    assert len(api.get("/log", params={"since": "2h"}).json()) == len(api.get("/log").json())
    assert api.get("/log", params={"since": "soon"}).status_code == 422
    assert [e["worker_id"] for e in api.get("/log", params={"result": "dead"}).json()] == ["hr:1003"]

    plan = api.get("/plan", params={"worker": "hr:1003"}).json()
    assert plan["worker_id"] == "hr:1003" and [a["action"] for a in plan["actions"]] == ["create"]
    assert api.get("/plan", params={"worker": "hr:1001"}).json()["actions"] == []  # already provisioned

    # The user the app refused is a dead letter (a 400 is permanent): the same rows as `failures --json`.
    failures = api.get("/failures").json()
    assert [(f["worker"], f["target"], f["action"], f["state"]) for f in failures] == [
        ("hr:1003", "app", "create", "dead")
    ]
    assert "400" in failures[0]["last_error"] and failures[0]["next_retry"] is None
    assert status["failures"]["app"]["dead"] == 1 and status["dead"] == 1 and status["retrying"] == 0
    assert api.get("/quarantine").json() == []
    assert api.get("/quarantine", params={"source": "nope"}).status_code == 404  # as the CLI's exit 2
    assert api.post("/failures/retry", json={"worker": "hr:1001"}).json() == {"retried": 0}  # nothing failed
    assert api.post("/failures/retry", json={}).status_code == 400


def test_resume_and_poll_do_what_the_cli_does(running: Engine):
    api, store = running.api(), Store(running.store_url)
    assert api.post("/sources/hr/resume").json()["resumed"] is False
    store.sources.halt("hr", "would disable 3 of 3 workers")
    halted = api.get("/status").json()
    assert halted["halted"] == ["hr"] and halted["sources"][0]["reason"] == "would disable 3 of 3 workers"
    assert api.post("/sources/hr/resume").json() == {
        "source": "hr",
        "resumed": True,
        "message": "the next poll applies its deprovisions",
    }
    # As `provisioner resume`: the halt is lifted and the held deprovisions are approved, once.
    assert not store.sources.states()["hr"].halted and "hr" in store.sources.approved()
    cli = subprocess.run(
        [sys.executable, "-m", "provisioner.engine.cli", "resume", "hr", "-c", str(running.config)],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0 and "was not halted" in cli.stdout
    assert api.post("/sources/nope/resume").status_code == 404

    polled = api.post("/sources/hr/poll").json()
    assert polled == {"source": "hr", "seen": 3, "events": 0, "quarantined": 0, "halted": None}


def test_provision_now_replans_the_person_through_the_outbox(running: Engine):
    api = running.api()
    queued = api.post("/workers/hr:1003/provision")
    assert queued.status_code == 202
    event_id = queued.json()["event_id"]
    entries = wait_for(
        lambda: [e for e in api.get("/log", params={"worker": "hr:1003"}).json() if e["event_id"] == event_id],
        30,
        "the re-plan applied",
    )
    assert entries[0]["action"] == "create" and entries[0]["result"] == "failure"  # the app still refuses
    assert api.post("/workers/hr:nobody/provision").status_code == 404


def test_reconcile_latest_is_the_last_report(running: Engine):
    api = running.api()
    if api.get("/reconcile/latest").status_code == 404:
        assert api.get("/reconcile/latest").json()["detail"] == "no reconciliation has run yet"
    run = subprocess.run(
        [sys.executable, "-m", "provisioner.engine.cli", "reconcile", "-c", str(running.config), "--json"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2, run.stderr  # hr:1003 has no account: a missing one
    latest = api.get("/reconcile/latest").json()
    assert latest["summary"]["app"] == {"confirmed": 2, "missing": 1}
    assert [(i["situation"], i["worker_id"]) for i in latest["items"]] == [("missing", "hr:1003")]
    metrics = samples(httpx.get(f"{running.url}/metrics").text)
    key = ("provisioner_reconcile_situations", (("situation", "missing"), ("target", "app")))
    assert metrics[key] == 1


def test_metrics_after_a_sync_with_one_failure(running: Engine):
    metrics = samples(httpx.get(f"{running.url}/metrics").text)

    def value(name: str, **labels: str) -> float:
        return metrics[(name, tuple(sorted(labels.items())))]

    assert value("provisioner_actions_total", target="app", action="create", result="success") == 2
    assert value("provisioner_actions_total", target="app", action="create", result="failure") >= 1
    assert value("provisioner_action_duration_seconds_count", target="app", action="create") >= 3
    assert value("provisioner_events_total", source="hr", type="worker.hired") == 3
    assert value("provisioner_poll_duration_seconds_count", source="hr") >= 1
    assert value("provisioner_outbox_pending") == 0
    assert value("provisioner_source_up", source="hr") == 1
    assert value("provisioner_source_halted", source="hr") == 0
    assert value("provisioner_source_last_success_timestamp_seconds", source="hr") > 1.7e9
    assert value("provisioner_failures", target="app", state="dead") == 1  # the refused user
    assert value("provisioner_failures", target="app", state="retrying") == 0
    assert value("provisioner_quarantined", source="hr") == 0


def test_json_log_lines_parse_and_carry_the_event_id(running: Engine):
    lines = running.json_logs()
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(line["time"].endswith("+00:00") for line in lines)
    failed = [line for line in lines if "provisioner failures lists it" in line["message"]]
    assert failed and failed[0]["worker_id"] == "hr:1003" and re.fullmatch(r"[0-9a-f]{32}", failed[0]["event_id"])
    polled = [line for line in lines if line["logger"] == "provisioner.poll"]
    assert polled and polled[0]["source"] == "hr"


def test_console_posts_need_the_session_and_its_csrf_token(running: Engine):
    with httpx.Client(base_url=running.url) as browser:
        assert browser.get("/").status_code == 303  # to the login page
        assert browser.post("/login", data={"token": "wrong"}).status_code == 401
        login = browser.post("/login", data={"token": TOKEN})
        assert login.status_code == 303
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = browser.get("/workers/hr:1001")
        assert page.status_code == 200 and "Provision now" in page.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf
        for data in ({}, {"csrf": "0" * 64}):
            assert browser.post("/workers/hr:1001/provision", data=data).status_code == 403
        assert browser.post("/workers/hr:1001/provision", data={"csrf": csrf.group(1)}).status_code == 303
    with httpx.Client(base_url=running.url) as stranger:  # no session at all
        assert stranger.post("/sources/hr/resume", data={"csrf": csrf.group(1)}).status_code == 403


def test_serve_without_a_token_answers_403_and_refuses_a_public_address(tmp_path: Path):
    with refusing_scim() as scim:
        config = write_config(tmp_path, scim.url, token=None)
        with engine(tmp_path, config, command="serve") as replica:
            answer = replica.api(token=None).get("/status")
            assert answer.status_code == 403 and "api.token" in answer.json()["detail"]
            assert httpx.get(f"{replica.url}/").status_code == 403
            assert httpx.get(f"{replica.url}/metrics").status_code == 200
            assert "provisioner_outbox_pending" in httpx.get(f"{replica.url}/metrics").text
            assert httpx.get(f"{replica.url}/readyz").json() == {"ready": True, "store": True}
        public = write_config(tmp_path, scim.url, token=None, listen=f"0.0.0.0:{free_port()}")
        refused = subprocess.run(
            [sys.executable, "-m", "provisioner.engine.cli", "serve", "-c", str(public)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2 and "api.token is not set" in " ".join(refused.stderr.split())


def test_the_target_page_shows_what_was_learned_about_the_app(running: Engine):
    [target] = running.api().get("/targets").json()
    # the engine process kept its profile of the app (at least the hash of what the app announces)
    assert target["learned"]["not kept"] == "nothing" and target["learned_at"]
    with httpx.Client(base_url=running.url) as browser:
        browser.post("/login", data={"token": TOKEN})
        page = browser.get("/targets/app")
        missing = browser.get("/targets/nope")
    assert page.status_code == 200 and "What this app was found to do" in page.text
    assert "member removals" in page.text and "not learned yet" in page.text
    assert missing.status_code == 404
