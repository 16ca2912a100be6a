"""ADP Workforce Now: mutual TLS, $top/$skip paging to the 204 past the end, the event queue as a
change feed whose messages are deleted only after their change is committed, and statuses."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.kit.servers import serve_asgi
from provisioner.engine.runtime.usecases.ingest import ingest
from provisioner.engine.store import Store
from provisioner.sources import build_source, settings_problems
from provisioner.sources.adp.emulator import AdpState, create_app
from provisioner.sources.adp.workers import worker_fields
from tests.source_harness import FAST


@pytest.fixture
def adp() -> Iterator[tuple[AdpState, list[str], str]]:
    state = AdpState(key_passphrase="key-passphrase")
    ids = state.seed(7)
    with state.serve() as server:
        yield state, ids, server.url


def settings(state: AdpState, url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": url,
        "token_url": f"{url}/auth/oauth/v2/token",
        "client_id": state.client_id,
        "client_secret": state.client_secret,
        "cert_file": str(state.tls.client_cert),
        "key_file": str(state.tls.client_key),
        "key_password": state.key_passphrase,
        "ca_file": str(state.tls.ca),
        **FAST,
        **overrides,
    }


def connect(state: AdpState, url: str, **overrides: Any) -> Any:
    return build_source("adp", "adp", settings(state, url, **overrides))


def listing_requests(state: AdpState) -> list[str]:
    return [r for r in state.seen if r.startswith("GET /hr/v2/workers?")]


async def test_without_the_client_certificate_the_handshake_is_refused(adp):
    state, _ids, url = adp
    other = {"cert_file": str(state.tls.other_client_cert), "key_file": str(state.tls.other_client_key)}
    stranger = connect(state, url, **other, key_password=None)
    with pytest.raises(SourceError, match=r"ADP refused the TLS handshake .*client certificate") as caught:
        await stranger.read({})
    await stranger.aclose()
    assert state.seen == [] and not state.tokens  # neither the token endpoint nor the API answered
    assert state.client_secret not in str(caught.value)
    # A client that presents no certificate at all fails the handshake too.
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=state.tls.ca)) as bare:
        with pytest.raises(httpx.HTTPError):
            await bare.post(f"{url}/auth/oauth/v2/token", data={"grant_type": "client_credentials"})


async def test_over_plain_http_the_api_answers_that_no_certificate_was_presented():
    state = AdpState()
    state.seed(1)
    with serve_asgi(create_app(state)) as server:
        async with httpx.AsyncClient() as plain:
            answer = await plain.post(f"{server.url}/auth/oauth/v2/token", data={"grant_type": "client_credentials"})
    assert answer.status_code == 401
    assert answer.json()["error_description"] == "proper client ssl certificate was not presented"


def test_a_key_that_does_not_open_is_one_clear_problem_without_the_passphrase():
    state = AdpState(key_passphrase="key-passphrase")
    wrong = settings(state, "https://api.adp.com", key_password="not-the-passphrase")
    problems = settings_problems({"name": "adp", "type": "adp", **wrong}, {"name", "type"})
    assert len(problems) == 1 and "does not load with its key" in problems[0][1]
    assert "not-the-passphrase" not in problems[0][1]
    missing = settings(state, "https://api.adp.com", cert_file="/nonexistent/adp.pem")
    assert "no such file" in settings_problems({"type": "adp", **missing}, {"type"})[0][1]
    too_big = settings(state, "https://api.adp.com", page_size=500)
    assert settings_problems({"type": "adp", **too_big}, {"type"})[0][0] == ("page_size",)


async def test_paging_takes_top_and_skip_until_the_204_past_the_end(adp):
    state, ids, url = adp
    state.hire(first_name="Eight", last_name="Person", personal_email="eight@mail.example", notify=False)
    source = connect(state, url, page_size=4)  # eight workers: two full pages, then 204
    read = await source.read({})
    await source.aclose()
    assert len(read.workers) == 8 and read.complete and not read.quarantined
    assert [r.split("?")[1] for r in listing_requests(state)] == [
        "%24top=4&%24skip=0",
        "%24top=4&%24skip=4",
        "%24top=4&%24skip=8",
    ]
    manager = {w.remote_id: w for w in read.workers}[ids[1]].manager_id
    assert manager == f"adp:{ids[0]}"


async def test_a_change_is_read_from_the_queue_and_its_message_deleted_only_after_commit(adp):
    state, ids, url = adp
    source = connect(state, url)
    first = await source.read({})  # full; committed as `first.cursor`
    state.change(ids[2], job_title="Principal Engineer")
    msgid = state.queue[0]["id"]
    before = len(listing_requests(state))

    second = await source.read(first.cursor)
    assert second.cursor["mode"] == "incremental" and not second.complete
    assert [(w.remote_id, w.title) for w in second.workers] == [(ids[2], "Principal Engineer")]
    assert len(listing_requests(state)) == before  # one worker fetched, no listing
    assert [m["id"] for m in state.queue] == [msgid] and state.deleted == []  # not committed yet

    # The engine crashed before committing `second`: the next poll starts from `first.cursor`
    # again and the message is still there to say what changed.
    again = await source.read(first.cursor)
    assert [w.remote_id for w in again.workers] == [ids[2]] and state.deleted == []

    third = await source.read(again.cursor)  # `again` was committed: now its message goes
    await source.aclose()
    assert state.deleted == [msgid] and state.queue == []
    assert third.workers == [] and third.cursor["queue_ack"] == []


async def test_messages_a_full_read_covered_are_deleted_unread(adp):
    state, ids, url = adp
    source = connect(state, url)
    state.change(ids[1], job_title="Staff Engineer")
    state.change(ids[3], job_title="Staff Engineer")
    full = await source.read({})  # reads both changes, as everything else
    fetched = len(state.seen)
    after = await source.read(full.cursor)
    await source.aclose()
    assert after.workers == [] and state.queue == [] and len(state.deleted) == 2
    assert not any(r.startswith("GET /hr/v2/workers") for r in state.seen[fetched:])


async def test_a_queue_that_fell_behind_is_caught_up_by_one_full_read(adp):
    state, ids, url = adp
    source = connect(state, url, queue_backlog="0s")  # any queued change counts as a backlog
    first = await source.read({})
    state.change(ids[4], job_title="Head of Things")
    state.change(ids[5], job_title="Head of Things")
    caught_up = await source.read(first.cursor)
    drained = await source.read(caught_up.cursor)
    await source.aclose()
    assert caught_up.complete and len(caught_up.workers) == 7
    assert drained.workers == [] and state.queue == [] and len(state.deleted) == 2


async def test_statuses_terminated_on_leave_and_future_hire(adp):
    state, ids, url = adp
    source = connect(state, url)
    first = await source.read({})
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    state.terminate(ids[1], on=yesterday)
    terminated = await source.read(first.cursor)
    people = {w.remote_id: w for w in terminated.workers}
    assert people[ids[1]].status.value == "terminated"
    assert people[ids[1]].termination_date == date.today() - timedelta(days=1)
    state.workers[ids[2]]["on_leave"] = True
    future = (date.today() + timedelta(days=14)).isoformat()
    hired = state.hire(first_name="Nova", last_name="Start", personal_email="nova@mail.example", start_date=future)
    full = {w.remote_id: w for w in (await source.read({})).workers}
    await source.aclose()
    assert full[ids[2]].status.value == "on_leave"
    assert full[hired].status.value == "pending" and full[hired].start_date.isoformat() == future
    assert full[ids[3]].status.value == "active" and full[ids[3]].department and full[ids[3]].division == "Corporate"


async def test_rate_limit_and_errors_carry_adps_confirm_message(adp):
    state, _ids, url = adp
    source = connect(state, url)
    state.gate.storm = 1
    read = await source.read({})
    assert len(read.workers) == 7 and state.gate.rejected == 1
    state.forbidden = {"/core/v1/event-notification-messages"}
    with pytest.raises(SourceError, match=r"denied access \(HTTP 403\).*not authorized to access this resource"):
        await source.read(read.cursor)
    await source.aclose()
    again = connect(state, url)
    try:  # closed, or the emulator's shutdown waits out its open connection
        gone = await again.fetch_one("G3NOSUCHWORKER00")
    finally:
        await again.aclose()
    assert gone.gone == ["G3NOSUCHWORKER00"] and not gone.workers


async def test_through_the_engine_a_poll_that_fails_to_commit_deletes_no_message(adp, tmp_path, monkeypatch):
    state, ids, url = adp
    store = Store(f"sqlite:///{tmp_path / 'adp.db'}")
    source = connect(state, url)
    try:
        await ingest(source, store)  # the first, full read
        state.change(ids[2], job_title="Principal Engineer")
        msgid = state.queue[0]["id"]
        committed = store.snapshots.set_cursor

        def crash(*args: Any) -> None:
            raise RuntimeError("the engine died before the commit")

        monkeypatch.setattr(store.snapshots, "set_cursor", crash)
        with pytest.raises(RuntimeError):
            await ingest(source, store)
        assert store.snapshots.get(f"adp:{ids[2]}").title != "Principal Engineer"
        assert [m["id"] for m in state.queue] == [msgid] and state.deleted == []

        monkeypatch.setattr(store.snapshots, "set_cursor", committed)
        changed = await ingest(source, store)  # the message is still there: the change is not lost
        assert [e.subject for e in changed.events] == [f"adp:{ids[2]}"]
        assert store.snapshots.get(f"adp:{ids[2]}").title == "Principal Engineer" and state.deleted == []
        await ingest(source, store)
        assert state.deleted == [msgid] and state.queue == []
    finally:
        await source.aclose()
        store.close()


# Trimmed from ADP's published Worker v2 samples (marketplace-sample-payloads, wfn/hr/workers-v2).
ALBRIGHT = {
    "associateOID": "G30K404TED759H96",
    "workerID": {"idValue": "0000000014"},
    "person": {
        "legalName": {"nickName": "Stan", "givenName": "Anthony", "familyName1": "Albright"},
        "communication": {"emails": [{"nameCode": {"codeValue": "Personal E-mail"}, "emailUri": "test2@gmail.com"}]},
    },
    "workerDates": {"originalHireDate": "2005-07-08"},
    "workerStatus": {"statusCode": {"codeValue": "Active"}},
    "workAssignments": [
        {
            "primaryIndicator": True,
            "hireDate": "2005-07-08",
            "assignmentStatus": {"statusCode": {"codeValue": "A", "shortName": "Active"}},
            "workerTypeCode": {"codeValue": "F", "shortName": "Full Time"},
            "jobTitle": "VP Human Resources",
            "positionID": "1W6000100",
            "homeOrganizationalUnits": [
                {
                    "nameCode": {"codeValue": "CORP", "shortName": "Corporate"},
                    "typeCode": {"codeValue": "Business Unit"},
                },
                {
                    "nameCode": {"codeValue": "111000", "shortName": "Corporate Staff"},
                    "typeCode": {"codeValue": "Department"},
                },
                {"nameCode": {"codeValue": "001111000", "shortName": "**"}, "typeCode": {"codeValue": "Cost Number"}},
            ],
            "homeWorkLocation": {
                "address": {"cityName": "Roseland", "countryCode": "US"},
                "nameCode": {"shortName": "East"},
            },
            "reportsTo": [{"associateOID": "G39P8HJJ3AE0D0YQ", "workerID": {"idValue": "0000000036"}}],
        }
    ],
}


@pytest.mark.fast
def test_adps_sample_worker_maps_by_display_names_and_codes():
    fields = worker_fields(ALBRIGHT, "adp", today=date(2026, 1, 1))
    assert fields["employee_number"] == "0000000014" and fields["first_name"] == "Anthony"
    assert (fields["department"], fields["division"], fields["cost_center"]) == (
        "Corporate Staff",
        "Corporate",
        "001111000",
    )
    assert fields["manager_id"] == "adp:G39P8HJJ3AE0D0YQ" and fields["employment_type"] == "full_time"
    assert (fields["location"], fields["country"], fields["status"]) == ("East", "US", "active")
    assert fields["personal_email"] == "test2@gmail.com" and fields["work_email"] is None
    # the terminated sample: workerStatus Terminated, assignment T with its reason and date
    work = {**ALBRIGHT["workAssignments"][0], "terminationDate": "2018-01-01"}
    work["assignmentStatus"] = {
        "statusCode": {"codeValue": "T", "shortName": "Terminated"},
        "reasonCode": {"codeValue": "J"},
    }
    gone = {**ALBRIGHT, "workerStatus": {"statusCode": {"codeValue": "Terminated"}}, "workAssignments": [work]}
    fields = worker_fields(gone, "adp", today=date(2026, 1, 1))
    assert fields["status"] == "terminated" and fields["termination_date"] == date(2018, 1, 1)
    # a code in neither vocabulary is named, so the record is quarantined with it
    odd = {**ALBRIGHT["workAssignments"][0], "assignmentStatus": {"statusCode": {"codeValue": "X"}}}
    strange = {**ALBRIGHT, "workerStatus": {"statusCode": {"codeValue": "Suspended"}}, "workAssignments": [odd]}
    with pytest.raises(ValueError, match="unknown workerStatus 'suspended'"):
        worker_fields(strange, "adp")


@pytest.mark.fast
def test_a_rehire_is_not_ended_by_the_termination_of_the_employment_before_it():
    # ADP keeps the last termination in workerDates after a rehire, beside rehireDate; the new
    # primary assignment has no terminationDate. That old date must not end the new employment.
    work = {**ALBRIGHT["workAssignments"][0], "hireDate": "2025-03-01"}
    dates = {"originalHireDate": "2005-07-08", "terminationDate": "2024-06-30", "rehireDate": "2025-03-01"}
    back = {**ALBRIGHT, "workerDates": dates, "workAssignments": [work]}
    fields = worker_fields(back, "adp", today=date(2026, 1, 1))
    assert fields["status"] == "active" and fields["termination_date"] is None
    # without an assignment hire date, rehireDate alone tells the same
    bare = {k: v for k, v in work.items() if k != "hireDate"}
    fields = worker_fields({**back, "workAssignments": [bare]}, "adp", today=date(2026, 1, 1))
    assert fields["termination_date"] is None and fields["start_date"] == date(2025, 3, 1)
    # a termination after the rehire still ends it
    later = {**dates, "terminationDate": "2025-12-31"}
    fields = worker_fields({**back, "workerDates": later}, "adp", today=date(2026, 1, 1))
    assert fields["termination_date"] == date(2025, 12, 31)


async def test_a_listing_that_ignores_skip_stops_at_the_first_repeated_page(adp):
    state, _ids, url = adp
    state.ignore_skip = True
    source = connect(state, url, page_size=3)
    with pytest.raises(SourceError, match="only workers already read"):
        await source.read({})
    await source.aclose()
    assert len(listing_requests(state)) == 2
