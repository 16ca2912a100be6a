"""ATS → HRIS hand-over: the pre-hire and the HRIS record of one person end as ONE account."""

from __future__ import annotations

import json

import pytest

from provisioner.engine.config import Config
from provisioner.engine.contracts.models import Worker
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.memory_bus import MemoryBus
from provisioner.engine.runtime.poller import correlate
from tests.conftest import scim_users

pytestmark = pytest.mark.fast

PREHIRE = {
    "remote_id": "a1",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "personal_email": "ada@mail.example",
    "work_email": "ada@example.com",
    "title": "Engineer",
    "department": "Engineering",
    "status": "pending",
    "start_date": "2026-12-01",
}
EMPLOYEE = {
    "remote_id": "e1",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "personal_email": "ADA@mail.example",
    "work_email": "ada@example.com",
    "title": "Engineer",
    "department": "Engineering",
    "status": "active",
    "employee_number": "E1",
}


def worker(source: str, **fields) -> Worker:  # type: ignore[no-untyped-def]
    return Worker(id=f"{source}:{fields['remote_id']}", source=source, **fields)


def test_first_key_with_values_decides_and_ambiguity_matches_nobody():
    ats = [
        worker("ats", remote_id="1", personal_email="a@x", employee_number="9"),
        worker("ats", remote_id="2", personal_email="b@x"),
        worker("ats", remote_id="3", personal_email="b@x"),
    ]
    new = [
        worker("hr", remote_id="e1", personal_email="A@X"),
        worker("hr", remote_id="e2", personal_email="b@x"),
        worker("hr", remote_id="e3", employee_number="9"),
    ]
    assert correlate(new, ats, ["personal_email", "employee_number"]) == [("ats:1", "hr:e1", "personal_email")]


async def test_hris_worker_takes_over_the_prehire_accounts(tmp_path, scim_server, scim):
    ats_file, hr_file = tmp_path / "ats.json", tmp_path / "hr.json"
    ats_file.write_text(json.dumps([PREHIRE]))
    hr_file.write_text(json.dumps([]))
    config = Config.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "engine": {"concurrency": 4},
            "sources": [
                {"name": "ats", "type": "file", "path": str(ats_file)},
                {
                    "name": "hr",
                    "type": "file",
                    "path": str(hr_file),
                    "correlate": ["personal_email", "work_email", "employee_number"],
                },
            ],
            "targets": [{"name": "app", "type": "scim", "base_url": scim_server.url}],
            "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]}],
            "lifecycle": {"prehire_days": 30},
        }
    )
    async with Runtime(config, bus=MemoryBus()) as runtime:
        await runtime.poll("ats")
        await runtime.wait_idle(timeout=60)
        [prehire_account] = scim_users(scim)
        assert prehire_account["externalId"] == "ats:a1"

        hr_file.write_text(json.dumps([EMPLOYEE]))
        await runtime.poll("hr")
        await runtime.wait_idle(timeout=60)
        assert [u["id"] for u in scim_users(scim)] == [prehire_account["id"]]  # no second account
        links = {(link.worker_id, link.target): link for link in runtime.store.links.all()}
        assert links[("hr:e1", "app")].account_id == prehire_account["id"]
        assert ("ats:a1", "app") not in links
        assert runtime.store.snapshots.handovers() == {"ats:a1": "hr:e1"}

        ats_file.write_text(json.dumps([]))  # the ATS drops the hire: that must not deprovision
        diff = await runtime.poll("ats")
        await runtime.wait_idle(timeout=60)
        assert diff.removals == ["ats:a1"] and not diff.events
        [account] = scim_users(scim)
        assert account["id"] == prehire_account["id"] and account["active"] is True
