"""The BambooHR connector against its emulator over real HTTP."""

from __future__ import annotations

from datetime import date

import pytest

from provisioner.engine.contracts.protocols import SourceError
from provisioner.sources.bamboohr.connector import BambooHRSource, employee_to_worker
from provisioner.sources.bamboohr.emulator import EmulatorState

pytestmark = pytest.mark.fast


def source(url: str, key: str, legacy: bool = True) -> BambooHRSource:
    base = f"{url}/api/gateway.php/acme" if legacy else f"{url}/api"
    return BambooHRSource.from_settings("bamboohr", {"base_url": base, "api_key": key, "backoff": 0.01})


@pytest.mark.parametrize("legacy", [True, False], ids=["gateway-url", "company-url"])
async def test_reads_everyone_including_inactive(bamboo, bamboo_state: EmulatorState, legacy):
    gone = next(iter(bamboo_state.employees))
    bamboo_state.terminate(gone, on="2024-01-31")
    src = source(bamboo.url, bamboo_state.api_key, legacy)
    read = await src.read({})
    await src.aclose()
    by_id = {w.remote_id: w for w in read.workers}
    assert len(read.workers) == 5 and not read.quarantined
    assert by_id[gone].status.value == "terminated"
    assert by_id[gone].termination_date == date(2024, 1, 31)
    some = next(w for w in read.workers if w.remote_id != gone)
    assert some.status.value == "active" and some.work_email and some.country and len(some.country) == 2
    assert read.cursor["records"] == 5


async def test_bad_key_is_one_clear_error_without_retries(bamboo, bamboo_state: EmulatorState):
    src = source(bamboo.url, "not-the-key")
    before = bamboo_state.faults.requests
    with pytest.raises(SourceError, match="refused the credentials"):
        await src.read({})
    await src.aclose()
    assert bamboo_state.faults.requests - before == 1
    assert "not-the-key" not in str(bamboo_state.api_key)


@pytest.mark.parametrize("status", [429, 503])
async def test_rate_limit_answers_are_waited_out(bamboo, bamboo_state: EmulatorState, status):
    bamboo_state.gate.storm, bamboo_state.throttle_status, bamboo_state.retry_after = 2, status, 0
    src = source(bamboo.url, bamboo_state.api_key)
    read = await src.read({})
    await src.aclose()
    assert len(read.workers) == 5
    assert bamboo_state.faults.requests == 3  # two throttled, one served: no request beyond what was needed


async def test_5xx_burst_recovered_and_persistent_failure_reported(bamboo, bamboo_state: EmulatorState):
    bamboo_state.faults.fail_next = 2
    src = source(bamboo.url, bamboo_state.api_key)
    assert len((await src.read({})).workers) == 5
    bamboo_state.faults.fail_next = 50
    with pytest.raises(SourceError, match="HTTP 500"):
        await src.read({})
    await src.aclose()


async def test_malformed_record_is_quarantined_and_the_rest_flows(bamboo, bamboo_state: EmulatorState):
    bad = next(iter(bamboo_state.employees))
    bamboo_state.change(bad, {"hireDate": "31/12/2020"})
    src = source(bamboo.url, bamboo_state.api_key)
    read = await src.read({})
    await src.aclose()
    assert len(read.workers) == 4
    assert [q.remote_id for q in read.quarantined] == [bad]
    assert "31/12/2020" in read.quarantined[0].reason


def test_status_mapping():
    today = date(2026, 6, 1)
    base = {
        "id": "1",
        "status": "Active",
        "employmentHistoryStatus": "Full-Time",
        "hireDate": "2020-01-01",
        "terminationDate": "0000-00-00",
    }
    assert employee_to_worker(base, today)["status"] == "active"
    assert employee_to_worker(base, today)["termination_date"] is None
    assert employee_to_worker({**base, "status": "Inactive", "hireDate": "2026-07-01"}, today)["status"] == "pending"
    assert (
        employee_to_worker({**base, "status": "Inactive", "terminationDate": "2026-05-01"}, today)["status"]
        == "terminated"
    )
    # a future-dated termination leaves the worker active with the date set
    future = employee_to_worker({**base, "terminationDate": "2026-06-30"}, today)
    assert future["status"] == "active" and future["termination_date"] == date(2026, 6, 30)
    assert employee_to_worker({**base, "employmentHistoryStatus": "Leave of Absence"}, today)["status"] == "on_leave"
    assert (
        employee_to_worker({**base, "employmentHistoryStatus": "Contractor"}, today)["employment_type"] == "contractor"
    )
    assert employee_to_worker({**base, "country": "United Kingdom"}, today)["country"] == "GB"
