"""One person across records and sources (issue 28 part 3): a conversion and an ATS-to-HRIS hand-off
each end with one account per target, never disabled in between; an ambiguous match is quarantined."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.config import Config
from provisioner.engine.kit.servers import free_port, scim_app, serve_asgi, serve_wsgi
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.memory_bus import MemoryBus
from provisioner.engine.runtime.ondemand import provision_one
from provisioner.engine.runtime.operations import plan_worker, provision_now
from provisioner.engine.runtime.policytools import explain
from provisioner.engine.runtime.usecases.identity import IdentityRules
from provisioner.engine.runtime.usecases.identity_manual import link, unlink
from provisioner.reconcile.run import reconcile
from provisioner.sources.bamboohr import emulator as bamboohr
from provisioner.sources.lever import emulator as lever
from tests.conftest import person, scim_users
from tests.ops_harness import TOKEN, engine
from tests.processes import wait_for

TODAY = date.today()
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _config(tmp_path: Path, scim_url: str, sources: list[str], **identity: Any) -> Config:
    return Config.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "engine": {"concurrency": 4},
            "sources": [{"name": name, "type": "file", "path": str(tmp_path / f"{name}.json")} for name in sources],
            "targets": [{"name": "app", "type": "scim", "base_url": scim_url}],
            "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]}],
            "lifecycle": {"prehire_days": 30, "prehire_state": "enabled"},
            "identity": {"match": ["work_email", "custom.national_id_hash"], **identity},
        }
    )


def _write(tmp_path: Path, source: str, records: list[dict[str, Any]]) -> None:
    (tmp_path / f"{source}.json").write_text(json.dumps(records))


async def _poll(runtime: Runtime, source: str) -> Any:
    diff = await runtime.poll(source)
    await runtime.wait_idle(timeout=60)
    return diff


def _revocations(runtime: Runtime) -> list[str]:
    return [e.action for e in runtime.store.log.recent(None, limit=1000) if e.action in ("disable", "delete")]


def _one_active_account(scim: httpx.Client) -> dict[str, Any]:
    [account] = scim_users(scim)
    assert account["active"] is True
    return account


async def test_a_conversion_keeps_the_contractor_account(tmp_path, scim_server, scim):
    hash_ = {"national_id_hash": "9f2c"}
    contractor = person(17, work_email="ada.ext@example.com", employment_type="contractor", custom=hash_)
    _write(tmp_path, "hr", [contractor])
    async with Runtime(_config(tmp_path, scim_server.url, ["hr"]), bus=MemoryBus()) as runtime:
        await _poll(runtime, "hr")
        first = _one_active_account(scim)

        # The contractor id ends today; the employee id, same person, starts tomorrow.
        ended = {**contractor, "status": "terminated", "termination_date": TODAY.isoformat()}
        tomorrow = (TODAY + timedelta(days=1)).isoformat()
        employee = person(912, work_email="ada@example.com", status="pending", start_date=tomorrow, custom=hash_)
        _write(tmp_path, "hr", [ended, employee])
        diff = await _poll(runtime, "hr")
        assert [e.subject for e in diff.events] == ["hr:17"]  # one event of the person, not two of records
        account = _one_active_account(scim)
        assert account["id"] == first["id"] and account["emails"][0]["value"] == "ada@example.com"

        report = person(30, manager_id="912")  # names the employee record, a bare id as HR writes it
        _write(tmp_path, "hr", [ended, {**employee, "status": "active"}, report])
        await _poll(runtime, "hr")
        users = {u["externalId"]: u for u in scim_users(scim)}
        assert users["hr:17"]["id"] == first["id"] and users["hr:17"]["active"] is True
        assert users["hr:30"][ENTERPRISE]["manager"]["value"] == first["id"]  # the person's account
        assert _revocations(runtime) == []  # never disabled in between
        planned = await plan_worker(runtime.parts, "hr:912")  # the person is planned, not the record
        assert planned["worker_id"] == "hr:17" and "create" not in {a["action"] for a in planned["actions"]}
        done = await provision_one(runtime.parts, "hr:912", lambda step, value: None)  # never a record alone
        assert done.event is None and done.note == "hr:912 is a record of the person hr:17: a poll plans the person"
        provision_now(runtime.store, "hr:912")  # re-plans the person (POST /api/v1/workers/hr:912/provision)
        runtime.wake()
        await runtime.wait_idle(timeout=60)
        assert sorted(u["externalId"] for u in scim_users(scim)) == ["hr:17", "hr:30"]  # none for hr:912
        assert sorted(link.worker_id for link in runtime.store.links.all()) == ["hr:17", "hr:30"]
        notes = [e.reason for e in runtime.store.log.recent("hr:17", limit=50) if e.action == "identity"]
        assert any("hr:17 ended; the same person starts as hr:912" in (n or "") for n in notes)


async def test_an_ats_prehire_hands_off_to_the_hris_record(tmp_path, scim_server, scim):
    start = (TODAY + timedelta(days=10)).isoformat()
    candidate = person(1, work_email="grace@example.com", status="pending", start_date=start, title="Candidate")
    _write(tmp_path, "ats", [candidate])
    _write(tmp_path, "hr", [])
    config = _config(tmp_path, scim_server.url, ["ats", "hr"], precedence=["hr", "ats"])
    config.safety.max_deprovisions = 0
    async with Runtime(config, bus=MemoryBus()) as runtime:
        await _poll(runtime, "ats")
        first = _one_active_account(scim)
        assert first["externalId"] == "ats:1"

        employee = person(
            77,
            work_email="Grace@Example.com",
            status="pending",
            start_date=start,
            title="Engineer",
            employee_number="E77",
        )
        _write(tmp_path, "hr", [employee])
        await _poll(runtime, "hr")
        account = _one_active_account(scim)
        assert account["id"] == first["id"] and account["title"] == "Engineer"  # the HRIS value wins

        _write(tmp_path, "hr", [{**employee, "status": "active"}])
        await _poll(runtime, "hr")
        _write(tmp_path, "ats", [{**candidate, "status": "terminated"}])  # the candidate record is archived
        await _poll(runtime, "ats")
        _write(tmp_path, "ats", [])  # and later deleted
        await _poll(runtime, "ats")
        assert _one_active_account(scim)["id"] == first["id"]
        assert _revocations(runtime) == []
        assert [link.worker_id for link in runtime.store.links.all()] == ["ats:1"]
        why = [e.reason or "" for e in runtime.store.log.recent("ats:1", limit=50) if e.action == "identity"]
        assert any("ats:1 ended; the same person is active as hr:77" in w for w in why)
        # The reconciler sees the person too, not its first record (gone) nor its second (joined).
        report = await reconcile(runtime.parts)
        assert [(i.worker_id, i.situation.value) for i in report.items] == [("ats:1", "confirmed")]

        # The HRIS record ends: the person leaves, whatever the ATS said. The safety guard (limit 0
        # here) holds the person's deprovision back first: the record's snapshot and the person stay.
        _write(tmp_path, "hr", [{**employee, "status": "terminated", "termination_date": TODAY.isoformat()}])
        diff = await _poll(runtime, "hr")
        assert diff.halted and [e.subject for e in diff.held] == ["ats:1"] and _one_active_account(scim)
        assert runtime.store.snapshots.get("hr:77").status.value == "active"
        assert runtime.store.sources.resume("hr")
        await _poll(runtime, "hr")
        [account] = scim_users(scim)
        assert account["active"] is False and _revocations(runtime) == ["disable"]


async def test_an_ambiguous_match_is_quarantined(tmp_path, scim_server, scim):
    one, two = person(1, custom={"national_id_hash": "aa"}), person(2, custom={"national_id_hash": "bb"})
    _write(tmp_path, "hr", [one, two])
    async with Runtime(_config(tmp_path, scim_server.url, ["hr"]), bus=MemoryBus()) as runtime:
        await _poll(runtime, "hr")
        # Person 2's national id is corrected to person 1's: two people now share it.
        _write(
            tmp_path, "hr", [person(1, custom={"national_id_hash": "aa"}), person(2, custom={"national_id_hash": "aa"})]
        )
        await _poll(runtime, "hr")
        newcomer = person(3, custom={"national_id_hash": "AA"})
        _write(
            tmp_path,
            "hr",
            [person(1, custom={"national_id_hash": "aa"}), person(2, custom={"national_id_hash": "aa"}), newcomer],
        )
        diff = await _poll(runtime, "hr")
        [held] = diff.quarantined
        assert held.remote_id == "3" and "matches 2 people (hr:1, hr:2)" in held.reason
        assert len(scim_users(scim)) == 2 and runtime.store.snapshots.get("hr:3") is None


async def test_a_manual_link_and_unlink(tmp_path, scim_server, scim):
    later = (TODAY + timedelta(days=60)).isoformat()  # beyond prehire_days: no account of its own yet
    ada, again = person(1), person(2, work_email="ada.new@example.com", status="pending", start_date=later)
    _write(tmp_path, "hr", [ada, again])
    config = _config(tmp_path, scim_server.url, ["hr"])
    rules = IdentityRules.of(config)
    async with Runtime(config, bus=MemoryBus()) as runtime:
        await _poll(runtime, "hr")
        first = _one_active_account(scim)
        with pytest.raises(LookupError, match="no worker 'hr:9'"):
            link(runtime.store, rules, "hr:1", "hr:9")
        decision = link(runtime.store, rules, "hr:1", "hr:2")
        assert decision.person_id == "hr:1" and decision.said == [
            "hr:2 joined hr:1: its accounts are that person's from now on"
        ]
        assert link(runtime.store, rules, "hr:2", "hr:1").said == ["hr:1 is already a record of hr:1"]
        explained = explain(runtime.parts, "hr:2")
        assert explained["identity"]["person"] == "hr:1"
        assert {r["worker_id"]: r["why"] for r in explained["identity"]["records"]} == {
            "hr:1": "the first record",
            "hr:2": "linked by hand",
        }
        assert explained["targets"]["app"]["account"]["id"] == first["id"]
        config_file = tmp_path / "provisioner.yaml"
        config_file.write_text(json.dumps(config.model_dump(mode="json", exclude_none=True)))
        listed = CliRunner().invoke(app, ["identity", "list", "--json", "-c", str(config_file)])
        assert listed.exit_code == 0, listed.output
        assert [(m["worker_id"], m["person_id"]) for m in json.loads(listed.output)] == [
            ("hr:1", "hr:1"),
            ("hr:2", "hr:1"),
        ]
        refused = CliRunner().invoke(app, ["identity", "unlink", "hr:1", "-c", str(config_file)])
        assert refused.exit_code == 1 and "anchor of hr:2" in refused.output

        with pytest.raises(ValueError, match="anchor of hr:2"):
            unlink(runtime.store, rules, "hr:1")
        assert unlink(runtime.store, rules, "hr:2").events  # hr:2 is planned as a person of its own
        assert runtime.store.identities.planned() == {}  # hr:1 is a person of one record again
        runtime.wake()
        await runtime.wait_idle(timeout=60)
        _write(tmp_path, "hr", [ada, {**again, "title": "Engineer"}])
        diff = await _poll(runtime, "hr")
        assert [e.subject for e in diff.events] == ["hr:2"]  # the rules leave it apart
        assert _one_active_account(scim)["id"] == first["id"] and explain(runtime.parts, "hr:2")["identity"] is None


def test_the_api_links_records(tmp_path):
    later = (TODAY + timedelta(days=60)).isoformat()
    _write(tmp_path, "hr", [person(1), person(2, work_email="other@example.com", status="pending", start_date=later)])
    with serve_wsgi(scim_app()) as scim_server:
        config = tmp_path / "provisioner.yaml"
        config.write_text(
            json.dumps(
                {
                    "store": {"url": f"sqlite:///{tmp_path / 'engine.db'}"},
                    "engine": {"listen": f"127.0.0.1:{free_port()}", "deferred_interval": "1h"},
                    "api": {"token": TOKEN},
                    "sources": [
                        {"name": "hr", "type": "file", "path": str(tmp_path / "hr.json"), "poll_interval": "1h"}
                    ],
                    "targets": [{"name": "app", "type": "scim", "base_url": scim_server.url}],
                    "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app"}]}],
                    "identity": {"match": ["work_email"]},
                }
            )
        )
        with engine(tmp_path, config) as running:
            api = running.api()
            wait_for(lambda: api.get("/status").json()["unapplied_events"] == 0 and api.get("/log").json(), 60, "sync")
            assert api.post("/identities/link", json={"person": "hr:1", "record": "hr:404"}).status_code == 404
            answer = api.post("/identities/link", json={"person": "hr:1", "record": "hr:2"})
            assert answer.status_code == 200 and answer.json()["person_id"] == "hr:1"
            assert {(j["worker_id"], j["why"]) for j in api.get("/identities").json()} == {
                ("hr:1", "the first record"),
                ("hr:2", "linked by hand"),
            }
            assert api.get("/workers/hr:2").json()["identity"]["person"] == "hr:1"
            assert api.post("/identities/unlink", json={"record": "hr:1"}).status_code == 409
            assert running.api(token=None).post("/identities/unlink", json={"record": "hr:2"}).status_code == 401


async def test_a_rehire_under_a_new_id_with_the_same_email_gets_the_old_account_back(tmp_path, scim_server, scim):
    _write(tmp_path, "hr", [person(5)])
    async with Runtime(_config(tmp_path, scim_server.url, ["hr"]), bus=MemoryBus()) as runtime:
        await _poll(runtime, "hr")
        first = _one_active_account(scim)
        left = {**person(5), "status": "terminated", "termination_date": (TODAY - timedelta(days=1)).isoformat()}
        _write(tmp_path, "hr", [left])
        await _poll(runtime, "hr")
        assert scim_users(scim)[0]["active"] is False
        # The same address under a new worker id: one person (match on work_email), not a collision.
        _write(tmp_path, "hr", [left, person(50, work_email="P5@example.com", title="Returning")])
        diff = await _poll(runtime, "hr")
        assert not diff.quarantined and [(e.subject, e.type.value) for e in diff.events] == [("hr:5", "worker.rehired")]
        account = _one_active_account(scim)
        assert account["id"] == first["id"] and account["title"] == "Returning"


async def test_a_lever_prehire_hands_off_to_the_bamboohr_employee(tmp_path, scim_server, scim):
    """Emulators over HTTP, no precedence configured: the HRIS outranks the ATS by the vendor's kind."""
    lever_state, bamboo_state = lever.LeverState(), bamboohr.EmulatorState()
    start = (TODAY + timedelta(days=10)).isoformat()
    fast = {"backoff": 0.01, "overlap": "0s", "page_size": 3}
    with serve_asgi(lever.create_app(lever_state)) as ats, serve_asgi(bamboohr.create_app(bamboo_state)) as hris:
        config = Config.model_validate(
            {
                "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
                "sources": [
                    {
                        "name": "ats",
                        "type": "lever",
                        "base_url": f"{ats.url}/v1",
                        "api_key": lever_state.api_key,
                        **fast,
                    },
                    {
                        "name": "hr",
                        "type": "bamboohr",
                        "base_url": f"{hris.url}/api/gateway.php/acme",
                        "api_key": bamboo_state.api_key,
                        **fast,
                    },
                ],
                "targets": [{"name": "app", "type": "scim", "base_url": scim_server.url}],
                "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]}],
                "lifecycle": {"prehire_days": 30, "prehire_state": "enabled"},
                "identity": {"match": ["personal_email"]},
            }
        )
        hire = lever_state.hire(
            first_name="Grace", last_name="Hopper", personal_email="Grace@Home.example", start_date=start
        )
        async with Runtime(config, bus=MemoryBus()) as runtime:
            await _poll(runtime, "ats")
            await _poll(runtime, "hr")  # nobody there yet
            first = _one_active_account(scim)
            assert first["externalId"] == f"ats:{hire}"

            employee = bamboo_state.hire(
                first_name="Grace", last_name="Hopper", hire_date=start, homeEmail="grace@home.example"
            )
            await _poll(runtime, "hr")
            account = _one_active_account(scim)
            assert account["id"] == first["id"]
            assert account["emails"][0]["value"] == employee["workEmail"]  # the HRIS address, not the ATS's none

            # The ATS moves its start date: the HRIS's date is the person's, nothing to plan.
            lever_state.change(hire, start_date=(TODAY + timedelta(days=40)).isoformat())
            diff = await _poll(runtime, "ats")
            assert [w.id for w in diff.upserts] == [f"ats:{hire}"] and not diff.events
            lever_state.remove(hire)  # the hire is undone in the ATS
            await _poll(runtime, "ats")
            assert _one_active_account(scim)["id"] == first["id"] and _revocations(runtime) == []
            assert explain(runtime.parts, f"hr:{employee['id']}")["identity"]["person"] == f"ats:{hire}"
