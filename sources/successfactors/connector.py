"""`type: successfactors` — people from SAP SuccessFactors Employee Central's OData v2 API.

One listing of `/odata/v2/PerPerson`, expanded as Microsoft Entra's SuccessFactors connector does
(personalInfoNav, emailNav, employmentNav/userNav, employmentNav/jobInfoNav and their picklists;
https://learn.microsoft.com/en-us/entra/identity/app-provisioning/sap-successfactors-integration-reference),
paged by the server through `__next` / `$skiptoken` with `customPageSize` and `paging=snapshot`
(https://userapps.support.sap.com/sap/support/knowledge/en/2723468). Incremental reads filter on
`lastModifiedDateTime gt datetimeoffset'…'` of the person and every expanded entity, plus job and
employment slices whose start or end falls in the window: a change entered weeks ago that takes
effect today (https://userapps.support.sap.com/sap/support/knowledge/en/2920680).

Effective dating: expanded EmpJob slices are those in effect today (`asOfDate` defaults to today,
https://userapps.support.sap.com/sap/support/knowledge/en/2148752). Slices starting later are read
with `fromDate` and are scheduled changes, not today's: a future termination becomes the Worker's
`termination_date` (the engine defers the revocation to it), a future hire is `pending` with the job
it will have, and any other future change is named in `custom.scheduled_change` until its day.
`emplStatus` is read through `emplStatusNav/externalCode`, SAP's fixed codes A/U/P/S/D/F/O/R/T
(https://userapps.support.sap.com/sap/support/knowledge/en/2505526).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx
import pycountry
from pydantic import Field, SecretStr

from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.kit.auth import AuthScheme, BasicAuth, SamlBearerAuth
from provisioner.engine.kit.paging import NextLinkPaging
from provisioner.engine.kit.saml import check_signing_key
from provisioner.sources.base import HttpSource, HttpSourceSettings
from provisioner.sources.successfactors.employment import continues, current_employment
from provisioner.sources.successfactors.odata import (
    day_literal,
    error_text,
    offset_literal,
    one,
    parse_day,
    parse_moment,
    results,
)
from provisioner.sources.successfactors.writeback import SUPPORTED, write_email

ODATA = "/odata/v2"
EXPAND = ",".join(
    [
        "personalInfoNav",
        "emailNav",
        "emailNav/emailTypeNav",
        "employmentNav",
        "employmentNav/userNav",
        "employmentNav/userNav/manager/empInfo",
        "employmentNav/jobInfoNav",
        "employmentNav/jobInfoNav/emplStatusNav",
        "employmentNav/jobInfoNav/departmentNav",
        "employmentNav/jobInfoNav/locationNav",
    ]
)
JOB_FIELDS = (
    "userId,startDate,endDate,emplStatus,jobTitle,department,division,location,costCenter,countryOfCompany,"
    "isFulltimeEmployee,lastModifiedDateTime,emplStatusNav,departmentNav,locationNav"
)
ENDED = {"T", "R", "O"}  # Terminated, Retired, Discarded (a global assignment's end)
AWAY = {"U", "P", "S", "F"}  # Unpaid and Paid Leave, Suspended, Furlough


class SuccessFactorsSettings(HttpSourceSettings):
    """`base_url` is the API server of the data centre (https://api4.successfactors.com), without /odata/v2."""

    company_id: str
    username: str | None = None  # Basic auth sends username@company_id
    password: SecretStr | None = None
    client_id: str | None = None  # the OAuth client's "API key"
    private_key: SecretStr | None = None  # PEM of the key pair whose certificate the OAuth client holds
    certificate: str | None = None
    user_id: str | None = None  # whom the SAML assertion names; the username by default
    business_email_type: str | None = None  # ecEmailType option id of code B; looked up when absent
    page_size: int = Field(default=500, ge=1, le=1000)  # a page holds at most 1,000 records


def _day(value: Any) -> date | None:
    return parse_day(value)


def _alpha2(value: str | None) -> str | None:
    # EmpJob.countryOfCompany is ISO 3166 alpha-3 (DEU); the Worker holds alpha-2.
    if not value:
        return None
    try:
        return str(pycountry.countries.lookup(value).alpha_2)
    except LookupError:
        raise ValueError(f"unknown country {value[:12]!r}") from None


def _code(job: Mapping[str, Any]) -> str | None:
    return (job.get("emplStatusNav") or {}).get("externalCode")


class SuccessFactorsSource(HttpSource):
    writable = frozenset(SUPPORTED)
    vendor = "SAP SuccessFactors"
    settings_model = SuccessFactorsSettings
    id_key = "personIdExternal"
    requires_auth = False  # from username/password or client_id/private_key
    credential_hint = "username and password, or client_id and private_key"
    scheduled_key: ClassVar[str] = "_scheduled"

    def __init__(self, name: str, settings: SuccessFactorsSettings):
        super().__init__(name, settings)
        self.sf = settings
        self._email_type: str | None = settings.business_email_type

    @classmethod
    def auth_for(cls, settings: HttpSourceSettings) -> AuthScheme:
        s = settings if isinstance(settings, SuccessFactorsSettings) else None
        if s is None or s.auth.type != "none":
            return settings.auth
        if s.client_id and s.private_key:
            check_signing_key(s.private_key.get_secret_value(), s.certificate)  # one line, not pydantic's
            if not (s.user_id or s.username):
                raise ValueError("user_id: the SAML assertion names the API user (user_id, or username)")
            return SamlBearerAuth(
                token_url=f"{s.base_url.rstrip('/')}/oauth/token",
                client_id=s.client_id,
                user_id=s.user_id or s.username or "",
                private_key=s.private_key,
                certificate=s.certificate,
                audience="www.successfactors.com",
                form={"company_id": s.company_id},
            )
        if s.username and s.password:
            return BasicAuth(username=SecretStr(f"{s.username}@{s.company_id}"), password=s.password)
        raise ValueError("SAP SuccessFactors needs username and password, or client_id and private_key")

    def refused(self, response: httpx.Response) -> SourceError:
        if response.status_code in (401, 403) or not response.content:
            return super().refused(response)
        return SourceError(
            f"source {self.name}: SAP SuccessFactors answered HTTP {response.status_code}: {error_text(response)}"
        )

    def _paging(self) -> NextLinkPaging:
        return NextLinkPaging(items="d.results", next="d.__next")

    def _people_params(self, filt: str | None) -> dict[str, Any]:
        params = {"$format": "json", "$expand": EXPAND, "customPageSize": self.sf.page_size, "paging": "snapshot"}
        return {**params, "$filter": filt} if filt else params

    async def _people(self, filt: str | None) -> AsyncIterator[list[dict[str, Any]]]:
        async for page in self.pages(f"{ODATA}/PerPerson", self._paging(), self._people_params(filt)):
            yield page

    async def _scheduled(self, user_ids: Iterable[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Job slices that start after today, by userId: changes entered ahead of their day."""
        today = datetime.now(UTC).date()
        filt = f"startDate gt {day_literal(today)}"
        wanted = sorted(set(user_ids)) if user_ids is not None else None
        if wanted is not None:
            if not wanted:
                return {}
            filt += " and userId in " + ",".join(f"'{u}'" for u in wanted)
        params = {
            "$format": "json",
            "fromDate": (today + timedelta(days=1)).isoformat(),
            "$filter": filt,
            "$select": JOB_FIELDS,
            "$expand": "emplStatusNav,departmentNav,locationNav",
            "customPageSize": self.sf.page_size,
        }
        found: dict[str, list[dict[str, Any]]] = {}
        async for page in self.pages(f"{ODATA}/EmpJob", self._paging(), params):
            for job in page:
                found.setdefault(str(job.get("userId")), []).append(job)
        return found

    def _with_scheduled(self, person: dict[str, Any], scheduled: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        users = [str(e.get("userId")) for e in results(person.get("employmentNav"))]
        return {**person, self.scheduled_key: [job for u in users for job in scheduled.get(u, [])]}

    def _delta(self, since: datetime) -> str:
        now = datetime.now(UTC)
        changed = " or ".join(
            f"{path}lastModifiedDateTime gt {offset_literal(since)}"
            for path in (
                "",
                "personalInfoNav/",
                "emailNav/",
                "employmentNav/",
                "employmentNav/userNav/",
                "employmentNav/jobInfoNav/",
            )
        )
        # Effective in the window though entered before it: a start, a job change, an end.
        first, last = day_literal(since.date()), day_literal(now.date())
        effective = " or ".join(
            f"({path} ge {first} and {path} le {last})"
            for path in ("employmentNav/startDate", "employmentNav/endDate", "employmentNav/jobInfoNav/startDate")
        )
        return f"{changed} or {effective}"

    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        scheduled = await self._scheduled()
        async for page in self._people(self._delta(since) if since is not None else None):
            for person in page:
                yield self._with_scheduled(person, scheduled)

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        quoted = remote_id.replace("'", "''")
        async for page in self._people(f"personIdExternal eq '{quoted}'"):
            for person in page:
                users = [str(e.get("userId")) for e in results(person.get("employmentNav"))]
                return self._with_scheduled(person, await self._scheduled(users))
        return None

    def to_worker(self, record: dict[str, Any], today: date | None = None) -> dict[str, Any]:
        today = today or datetime.now(UTC).date()
        employment = current_employment(results(record.get("employmentNav")), today)
        user = one(employment.get("userNav"))
        user_id = str(employment.get("userId") or user.get("userId") or "")
        ahead = sorted(
            (j for j in record.get(self.scheduled_key) or [] if str(j.get("userId")) == user_id),
            key=lambda j: _day(j.get("startDate")) or date.max,
        )
        job = one(employment.get("jobInfoNav")) or (ahead[0] if ahead else {})
        personal = one(record.get("personalInfoNav"))
        emails = {
            (e.get("emailTypeNav") or {}).get("externalCode"): e.get("emailAddress")
            for e in results(record.get("emailNav"))
        }
        started, ended = _day(employment.get("startDate")), _day(employment.get("endDate"))
        leaving = next((j for j in ahead if _code(j) in ENDED), None)
        if ended is None and leaving is not None and (first := _day(leaving.get("startDate"))):
            ended = first - timedelta(days=1)  # the termination slice starts the day after the last day
        if ended is not None and continues(results(record.get("employmentNav")), employment, ended):
            ended = None  # a conversion or rehire without a gap: the person does not leave
        code = _code(job)
        if ended is None and code in ENDED and (first := _day(job.get("startDate"))):
            ended = first - timedelta(days=1)  # an employment whose endDate was left empty
        if started and started > today:
            status = "pending"
        elif code in ENDED or (ended is not None and ended < today):
            status = "terminated"
        elif code in AWAY:
            status = "on_leave"
        else:
            status = "active"
        change = next((j for j in ahead if j is not job and _code(j) not in ENDED), None)
        manager = one(one(user.get("manager")).get("empInfo")).get("personIdExternal")
        kind = None
        if job or employment:
            contingent = str(employment.get("isContingentWorker")).lower() == "true"
            kind = (
                "contractor"
                if contingent
                else ("full_time" if job.get("isFulltimeEmployee") is not False else "part_time")
            )
        return {
            "employee_number": user_id or None,
            "username": user.get("username"),
            "first_name": personal.get("firstName") or user.get("firstName"),
            "last_name": personal.get("lastName") or user.get("lastName"),
            "preferred_name": personal.get("preferredName"),
            "work_email": emails.get("B"),
            "personal_email": emails.get("P"),
            "title": job.get("jobTitle"),
            "department": (job.get("departmentNav") or {}).get("name") or job.get("department"),
            "division": job.get("division"),
            "cost_center": job.get("costCenter"),
            "location": (job.get("locationNav") or {}).get("name") or job.get("location"),
            "country": _alpha2(job.get("countryOfCompany")),
            "timezone": user.get("timeZone"),
            "manager_id": f"{self.name}:{manager}" if manager else None,
            "employment_type": kind,
            "status": status,
            "start_date": started,
            "termination_date": ended,
            "updated_at": parse_moment(record.get("lastModifiedDateTime")),
            "custom": {
                k: v
                for k, v in {
                    "user_id": user_id or None,
                    "empl_status": code,
                    "scheduled_change": change and str(_day(change.get("startDate"))),
                }.items()
                if v
            },
        }

    async def write_back(self, remote_id: str, values: Mapping[str, str]) -> None:
        """The work email, as a PerEmail of the business type upserted (see writeback.py)."""
        self._email_type = await write_email(self, remote_id, values, self._email_type)
