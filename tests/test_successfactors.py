"""SAP SuccessFactors beyond the contract suite: the OData v2 format, effective dating (scheduled
changes are not today's), deltas that catch a change taking effect today, SAML-bearer OAuth, and
the PerEmail writeback, each against the emulator over real HTTP."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from provisioner.engine.contracts.protocols import SourceError, WritebackRefused, WritesBack
from provisioner.engine.kit.servers import serve_asgi
from provisioner.sources import build_source
from provisioner.sources.successfactors.employment import current_employment
from provisioner.sources.successfactors.emulator import SuccessFactorsState, create_app
from provisioner.sources.successfactors.odata import ms_date

TODAY = date.today()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


@pytest.fixture
def sf() -> Iterator[tuple[SuccessFactorsState, list[str], str]]:
    state = SuccessFactorsState()
    ids = state.seed(4)
    with serve_asgi(create_app(state)) as server:
        yield state, ids, server.url


def connect(state: SuccessFactorsState, url: str, **overrides: Any) -> Any:
    settings = {"base_url": url, "company_id": state.company_id, "username": state.username}
    settings |= {"password": state.password, "backoff": 0.01, "overlap": "0s", "page_size": 2, **overrides}
    return build_source("sf", "successfactors", settings)


async def read_all(state: SuccessFactorsState, url: str, cursor: dict[str, Any] | None = None, **kw: Any) -> Any:
    source = connect(state, url, **kw)
    try:
        return await source.read(cursor or {})
    finally:
        await source.aclose()


def basic(state: SuccessFactorsState) -> httpx.BasicAuth:
    return httpx.BasicAuth(f"{state.username}@{state.company_id}", state.password)


def test_answers_are_odata_v2_json_with_server_paging(sf):
    state, ids, url = sf
    params = {"$format": "json", "customPageSize": 3, "$expand": "employmentNav/jobInfoNav/emplStatusNav"}
    first = httpx.get(f"{url}/odata/v2/PerPerson", params=params, auth=basic(state)).json()["d"]
    assert [p["personIdExternal"] for p in first["results"]] == ids[:3]
    assert "$skiptoken=" in first["__next"] and first["__next"].startswith(url)
    person = first["results"][0]
    assert re.fullmatch(r"/Date\(\d+\+0000\)/", person["lastModifiedDateTime"])
    assert "__deferred" in person["emailNav"]  # not asked for in $expand
    job = person["employmentNav"]["results"][0]["jobInfoNav"]["results"][0]
    assert job["startDate"] == ms_date(date(2024, 3, 1)) == "/Date(1709251200000)/"
    assert job["emplStatus"] == job["emplStatusNav"]["id"] and job["emplStatusNav"]["externalCode"] == "A"
    assert job["emplStatusNav"]["localeLabel"] == "Active"
    rest = httpx.get(first["__next"], auth=basic(state)).json()["d"]
    assert [p["personIdExternal"] for p in rest["results"]] == ids[3:] and "__next" not in rest
    users = httpx.get(f"{url}/odata/v2/User", params={"$format": "json", "customPageSize": 3}, auth=basic(state))
    more = httpx.get(users.json()["d"]["__next"], auth=basic(state)).json()["d"]["results"]
    assert [u["userId"] for u in users.json()["d"]["results"] + more] == ids
    jobs = httpx.get(f"{url}/odata/v2/EmpEmployment", params={"$expand": "jobInfoNav"}, auth=basic(state))
    assert all(len(e["jobInfoNav"]["results"]) == 1 for e in jobs.json()["d"]["results"])
    picked = httpx.get(f"{url}/odata/v2/EmpJob", params={"$select": "userId,jobTitle"}, auth=basic(state))
    assert {tuple(sorted(j)) for j in picked.json()["d"]["results"]} == {("__metadata", "jobTitle", "userId")}


def test_odata_errors_rate_limit_and_maintenance(sf):
    state, _ids, url = sf
    wrong = httpx.get(f"{url}/odata/v2/FormHeader ", auth=basic(state))
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "COE_ENTITY_NOT_FOUND"
    assert wrong.json()["error"]["message"]["value"].startswith("[COE0007]invalid entity")
    both = httpx.get(f"{url}/odata/v2/EmpJob", params={"asOfDate": day(0), "fromDate": day(0)}, auth=basic(state))
    assert both.status_code == 400
    state.gate.storm = 1
    limited = httpx.get(f"{url}/odata/v2/PerPerson", auth=basic(state))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    state.faults.fail_next, state.faults.fail_status = 1, 503
    down = httpx.get(f"{url}/odata/v2/PerPerson", auth=basic(state))
    assert down.status_code == 503 and "scheduled maintenance" in down.json()["error"]["message"]["value"]
    nobody = httpx.get(f"{url}/odata/v2/PerPerson", auth=httpx.BasicAuth(state.username, state.password))
    assert nobody.status_code == 401  # without @companyId


async def test_effective_dating_future_hire_termination_and_scheduled_change(sf):
    state, ids, url = sf
    newcomer = state.hire(first_name="Ada", last_name="Lovelace", title="Analyst", start_date=day(10))
    state.terminate(ids[1], on=day(5))  # entered today, effective next week
    state.terminate(ids[2], on=day(-1))  # already gone
    title = state.people[ids[3]]["employments"][0]["jobs"][0]["jobTitle"]
    state.change(ids[3], on=day(30), title="Director")  # a promotion next month
    state.change(ids[0], emplStatus="U")  # unpaid leave from today
    people = {w.remote_id: w for w in (await read_all(state, url)).workers}
    hire = people[newcomer]
    assert hire.status.value == "pending" and hire.start_date == TODAY + timedelta(days=10)
    assert hire.title == "Analyst"  # the job they will have: read from the slice that starts later
    leaving = people[ids[1]]
    assert leaving.status.value == "active" and leaving.termination_date == TODAY + timedelta(days=5)
    gone = people[ids[2]]
    assert gone.status.value == "terminated" and gone.termination_date == TODAY - timedelta(days=1)
    promoted = people[ids[3]]
    assert promoted.title == title != "Director"  # not today's change
    assert promoted.custom["scheduled_change"] == day(30)
    assert people[ids[0]].status.value == "on_leave" and people[ids[0]].custom["empl_status"] == "U"
    assert people[ids[3]].manager_id == f"sf:{ids[0]}" and hire.country == "DE"  # from ISO alpha-3 DEU


def entered(state: SuccessFactorsState, when: datetime) -> None:
    """Every stored change as if it had been entered at `when`."""

    def age(node: Any) -> None:
        if isinstance(node, dict):
            node.update({k: when for k in node if k == "lastModified"})
            for value in node.values():
                age(value)
        elif isinstance(node, list):
            for value in node:
                age(value)

    age(state.people)


async def test_incremental_read_catches_a_change_taking_effect_today(sf):
    state, ids, url = sf
    first = await read_all(state, url)
    state.change(ids[2], on=day(0), title="Staff Engineer")
    entered(state, datetime.now(UTC) - timedelta(days=40))  # entered weeks ago, effective today
    since = {**first.cursor, "since": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    second = await read_all(state, url, since)
    assert second.cursor["mode"] == "incremental"
    assert [w.remote_id for w in second.workers] == [ids[2]] and second.workers[0].title == "Staff Engineer"


def test_the_employment_that_speaks_for_a_converted_person():
    contractor = {"userId": "c", "startDate": ms_date(TODAY - timedelta(days=300)), "endDate": ms_date(TODAY)}
    employee = {"userId": "e", "startDate": ms_date(TODAY + timedelta(days=1)), "endDate": None}
    assert current_employment([contractor, employee], TODAY)["userId"] == "c"  # until its last day
    assert current_employment([contractor, employee], TODAY + timedelta(days=1))["userId"] == "e"
    ended = {**contractor, "endDate": ms_date(TODAY - timedelta(days=3))}
    assert current_employment([ended, employee], TODAY)["userId"] == "e"  # the next one, not the old


async def test_a_conversion_keeps_the_person_with_no_termination_in_between(sf):
    state, _ids, url = sf
    contractor = state.hire(first_name="Lin", last_name="Ma", commitment="Contractor", start_date=day(-200))
    state.terminate(contractor, on=day(0))  # the contract's last day is today
    state.employ(contractor, day(1), commitment="Full-time", title="Engineer")  # employee from tomorrow
    source = connect(state, url)
    read = await source.read({})
    record = await source.record(contractor)
    await source.aclose()
    today = {w.remote_id: w for w in read.workers}[contractor]
    assert today.status.value == "active" and today.termination_date is None  # nothing to revoke
    assert today.employment_type.value == "contractor" and today.custom["user_id"] == contractor
    tomorrow = source.to_worker(record, today=TODAY + timedelta(days=1))
    assert tomorrow["status"] == "active" and tomorrow["employment_type"] == "full_time"
    assert tomorrow["termination_date"] is None and tomorrow["custom"]["user_id"] == f"{contractor}-2"
    assert tomorrow["title"] == "Engineer"


def key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provisioner-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode(), cert.public_bytes(serialization.Encoding.PEM).decode()


async def test_oauth_saml_bearer_reads_and_a_foreign_key_is_refused(sf):
    state, ids, url = sf
    private_key, state.certificate = key_pair()
    oauth = {"client_id": state.client_id, "private_key": private_key, "password": None}
    read = await read_all(state, url, **oauth)
    assert sorted(w.remote_id for w in read.workers) == sorted(ids) and len(state.tokens) == 1
    other_key, _cert = key_pair()
    with pytest.raises(SourceError, match=r"refused the SAML assertion.*HTTP 401") as caught:
        await read_all(state, url, **{**oauth, "private_key": other_key})
    assert "PRIVATE KEY" not in str(caught.value)


def test_oauth_idp_helper_signs_an_assertion_the_token_endpoint_takes(sf):
    state, _ids, url = sf
    private_key, state.certificate = key_pair()
    form = {"client_id": state.client_id, "user_id": state.username, "token_url": f"{url}/oauth/token"}
    assertion = httpx.post(
        f"{url}/oauth/idp", data={**form, "private_key": base64.b64encode(private_key.encode()).decode()}
    )
    grant = {"company_id": state.company_id, "client_id": state.client_id, "assertion": assertion.text}
    token = httpx.post(
        f"{url}/oauth/token", data={**grant, "grant_type": "urn:ietf:params:oauth:grant-type:saml2-bearer"}
    )
    assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert httpx.get(f"{url}/odata/v2/PerPerson", params={"$format": "json"}, headers=bearer).status_code == 200
    wrong_company = httpx.post(f"{url}/oauth/token", data={**grant, "company_id": "OTHER", "grant_type": "x"})
    assert wrong_company.status_code in (400, 401)


async def test_writeback_upserts_the_business_email_and_reads_it_back(sf):
    state, ids, url = sf
    source = connect(state, url)
    assert isinstance(source, WritesBack)
    await source.write_back(ids[1], {"work_email": "grace@acme.example"})
    assert state.email_of(ids[1]) == "grace@acme.example"
    listed = httpx.get(
        f"{url}/odata/v2/PerEmail",
        params={"$format": "json", "$filter": f"personIdExternal eq '{ids[1]}'"},
        auth=basic(state),
    ).json()["d"]["results"]
    business = next(e for e in listed if e["emailType"] == "8448")
    assert business["emailAddress"] == "grace@acme.example" and business["isPrimary"] is True
    read = {w.remote_id: w for w in (await source.read({})).workers}
    assert read[ids[1]].work_email == "grace@acme.example"
    # a person whose personal email is primary gets the business email without a second primary
    del state.people[ids[2]]["emails"]["B"]
    state.people[ids[2]]["emails"]["P"] = {**state.people[ids[2]]["emails"]["P"], "isPrimary": True}
    await source.write_back(ids[2], {"work_email": "new@acme.example"})
    assert state.email_of(ids[2]) == "new@acme.example" and not state.people[ids[2]]["emails"]["B"]["isPrimary"]
    await source.aclose()


async def test_writeback_refusals_and_outages_are_told_apart(sf):
    state, ids, url = sf
    source = connect(state, url, max_attempts=2)
    with pytest.raises(WritebackRefused, match="refused the work email"):
        await source.write_back("nobody", {"work_email": "x@acme.example"})  # an ERROR inside the 200
    with pytest.raises(WritebackRefused, match="only work_email"):
        await source.write_back(ids[0], {"phone": "+49 30 1234"})
    state.faults.fail_next, state.faults.fail_status = 99, 503
    with pytest.raises(SourceError) as outage:
        await source.write_back(ids[0], {"work_email": "y@acme.example"})
    assert not isinstance(outage.value, WritebackRefused)
    await source.aclose()


def test_credentials_are_required_in_one_of_two_forms():
    from provisioner.sources.successfactors.connector import SuccessFactorsSource

    problems = SuccessFactorsSource.problems({"base_url": "https://api4.successfactors.com", "company_id": "ACME"})
    assert problems and "username and password, or client_id and private_key" in problems[0][1]


def test_a_private_key_that_cannot_sign_is_one_line_at_validate_without_the_key():
    from provisioner.sources.successfactors.connector import SuccessFactorsSource

    base = {"base_url": "https://api4.successfactors.com", "company_id": "ACME", "client_id": "api-key"}
    garbage = "-----BEGIN PRIVATE KEY-----\nNOTAKEYXYZZY\n-----END PRIVATE KEY-----"
    problems = SuccessFactorsSource.problems({**base, "private_key": garbage})
    assert [p[1] for p in problems] == ["private_key: not an unencrypted PEM private key"]
    private_key, _cert = key_pair()
    _other, foreign = key_pair()
    problems = SuccessFactorsSource.problems({**base, "private_key": private_key, "certificate": foreign})
    assert [p[1] for p in problems] == ["certificate: it does not belong to private_key"]
    problems = SuccessFactorsSource.problems({**base, "private_key": private_key, "certificate": _cert})
    assert [p[1] for p in problems] == ["user_id: the SAML assertion names the API user (user_id, or username)"]
    assert SuccessFactorsSource.problems({**base, "private_key": private_key, "user_id": "sfapi"}) == []


@pytest.mark.fast
def test_a_termination_job_without_an_employment_end_dates_the_leaver_by_its_slice():
    # The termination EmpJob slice starts the day after the last day; an EmpEmployment whose
    # endDate was not filled still dates the leaver by it, not "terminated, date unknown".
    source = build_source(
        "sf", "successfactors", {"base_url": "https://x.example", "company_id": "A", "username": "u", "password": "p"}
    )
    job = {"userId": "u1", "startDate": ms_date(TODAY - timedelta(days=2)), "emplStatusNav": {"externalCode": "T"}}
    employment = {"userId": "u1", "startDate": ms_date(TODAY - timedelta(days=400)), "endDate": None}
    record = {
        "personIdExternal": "p1",
        "employmentNav": {"results": [{**employment, "jobInfoNav": {"results": [job]}}]},
    }
    worker = source.to_worker(record, today=TODAY)
    assert worker["status"] == "terminated" and worker["termination_date"] == TODAY - timedelta(days=3)
