"""A SAP SuccessFactors emulator: the Employee Central OData v2 API over real HTTP.

What it reproduces, from SAP's knowledge base and Microsoft's SuccessFactors integration pages:
- `/odata/v2/PerPerson`, `EmpEmployment`, `User`, `EmpJob`, `PerEmail`, `Picklist('ecEmailType')`
  as `{"d": {"results": [...], "__next": "...$skiptoken=..."}}`, `$format=json`, `$expand`
  (a navigation not expanded is `__deferred`), `$filter` (query.py), `$top`; server-side paging
  through `__next` with `customPageSize` (at most 1,000 records a page) and `paging=snapshot`, whose
  keys are fixed at the first page (https://userapps.support.sap.com/sap/support/knowledge/en/2723468,
  https://userapps.support.sap.com/sap/support/knowledge/en/3308165).
- Effective dating: expanded or listed EmpJob slices are those in effect on `asOfDate` (today by
  default); `fromDate`/`toDate` return the slices overlapping that range, filtering the top-level
  entity only; both at once is an error
  (https://apps.support.sap.com/sap/support/knowledge/en/2853045,
  https://userapps.support.sap.com/sap/support/knowledge/en/2148752).
- Dates `/Date(ms)/` and `/Date(ms+0000)/` (odata.py); picklists as option ids plus
  PicklistOption navigations (entities.py).
- `POST /odata/v2/upsert`: HTTP 200 with a status per record, a refused record inside it
  (https://userapps.support.sap.com/sap/support/knowledge/en/3386831); `isPrimary` required, one
  primary email per person.
- Auth: Basic `username@companyId`; OAuth 2.0 SAML bearer at `/oauth/token` (company_id, client_id,
  grant_type, assertion, verified against the client's X.509 certificate) and the `/oauth/idp`
  helper that signs an assertion for a user_id with a posted private key.
- Errors as OData error bodies: 400 COE_ENTITY_NOT_FOUND / COE_PROPERTY_NOT_FOUND, 401, 403, 503
  maintenance (https://userapps.support.sap.com/sap/support/knowledge/en/2545055). Rate limiting is
  announced but postponed; a 429 carries Retry-After (SAP recommends retrying after 300 s;
  https://userapps.support.sap.com/sap/support/knowledge/en/3159263); `retry_after` here is 1 s so
  tests stay quick. Codes of the 401/403 bodies are not documented publicly: ours are named plainly.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.engine.kit.emulation import RateGate
from provisioner.sources.emulation import Vendor, admin_routes, ascii_local, fake_people
from provisioner.sources.successfactors.entities import EMAIL_TYPES, Writer
from provisioner.sources.successfactors.oauth_emulation import oauth_routes
from provisioner.sources.successfactors.odata import error_body
from provisioner.sources.successfactors.query import FilterError, compile_filter

ALPHA3 = {"DE": "DEU", "GB": "GBR", "US": "USA", "PT": "PRT", "CA": "CAN"}
MAX_PAGE = 1000


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SuccessFactorsState(Vendor):
    company_id: str = "ACME"
    username: str = "sfapi"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    client_id: str = field(default_factory=lambda: secrets.token_hex(12))  # the OAuth client's API key
    certificate: str | None = None  # PEM of the OAuth client's X.509 certificate
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> user id
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    gate: RateGate = field(default_factory=lambda: RateGate(rate=1000.0, burst=1000))
    retry_after: int = 1
    _ids: itertools.count = field(default_factory=lambda: itertools.count(10001))

    def seed(self, count: int, seed: int = 23) -> list[str]:
        ids = [self.hire(**{**p, "start_date": "2024-03-01"}) for p in fake_people(count, seed)]
        for pid in ids[1:]:
            self.change(pid, manager=ids[0])
        return ids

    def hire(
        self,
        *,
        first_name: str,
        last_name: str,
        personal_email: str | None = None,
        department: str = "Engineering",
        title: str = "Software Engineer",
        location: str = "Berlin",
        country: str = "DE",
        commitment: str = "Full-time",
        start_date: str | None = None,
        person_id: str | None = None,
        **_: Any,
    ) -> str:
        with self.lock:
            pid = person_id or str(next(self._ids))
            start, now = start_date or date.today().isoformat(), _now()
            local = ascii_local(first_name, last_name)
            emails = {"B": {"emailAddress": f"{local}{pid}@acme.example", "isPrimary": True, "lastModified": now}}
            if personal_email:
                emails["P"] = {"emailAddress": personal_email, "isPrimary": False, "lastModified": now}
            self.people[pid] = {
                "personIdExternal": pid,
                "uuid": str(uuid.uuid4()).upper(),
                "lastModified": now,
                "personal": {"firstName": first_name, "lastName": last_name, "startDate": start, "lastModified": now},
                "emails": emails,
                "employments": [],
            }
            self.employ(
                pid,
                start,
                commitment=commitment,
                title=title,
                department=department,
                location=location,
                country=country,
                user_id=pid,
            )
            return pid

    def employ(
        self,
        pid: str,
        start: str,
        *,
        commitment: str = "Full-time",
        title: str = "Software Engineer",
        department: str = "Engineering",
        location: str = "Berlin",
        country: str = "DE",
        user_id: str | None = None,
    ) -> str:
        """A new EmpEmployment (and User) for a person: a hire, a rehire, or a conversion."""
        with self.lock:
            person, now = self.people[pid], _now()
            user_id = user_id or f"{pid}-{len(person['employments']) + 1}"
            personal = person["personal"]
            person["employments"].append(
                {
                    "userId": user_id,
                    "startDate": start,
                    "endDate": None,
                    "isContingentWorker": commitment == "Contractor",
                    "lastModified": now,
                    "user": {
                        "username": f"{personal['firstName'][0]}{personal['lastName']}{user_id}".lower(),
                        "firstName": personal["firstName"],
                        "lastName": personal["lastName"],
                        "timeZone": "Europe/Berlin",
                        "managerId": None,
                        "lastModified": now,
                    },
                    "jobs": [
                        {
                            "startDate": start,
                            "emplStatus": "A",
                            "jobTitle": title,
                            "department": department,
                            "division": "Acme Corp",
                            "location": location,
                            "costCenter": "CC-100",
                            "countryOfCompany": ALPHA3.get(country, country),
                            "isFulltimeEmployee": commitment != "Part-time",
                            "lastModified": now,
                        }
                    ],
                }
            )
            return user_id

    def _current(self, pid: str) -> dict[str, Any]:
        return self.people[pid]["employments"][-1]

    def change(self, pid: str, on: str | None = None, **changes: Any) -> None:
        """A job change as a new slice from `on` (today by default; later = a scheduled change), or,
        for names, manager and stored values, an edit in place."""
        with self.lock:
            person, now = self.people[pid], _now()
            employment = self._current(pid)
            job_keys = {
                "title": "jobTitle",
                "department": "department",
                "location": "location",
                "emplStatus": "emplStatus",
                "countryOfCompany": "countryOfCompany",
                "startDate": "startDate",
            }
            job_changes = {job_keys[k]: v for k, v in changes.items() if k in job_keys}
            if "manager" in changes:
                boss = changes["manager"]
                employment["user"].update(managerId=self._current(boss)["userId"] if boss else None, lastModified=now)
            if "first_name" in changes:
                person["personal"].update(firstName=changes["first_name"], lastModified=now)
            if "employment_start" in changes:  # the stored value as is, valid or not
                employment.update(startDate=changes["employment_start"], lastModified=now)
            if job_changes:
                day = on or date.today().isoformat()
                jobs = employment["jobs"]
                base = max(
                    (j for j in jobs if str(j["startDate"]) <= day), key=lambda j: str(j["startDate"]), default=jobs[0]
                )
                jobs[:] = [j for j in jobs if j["startDate"] != day] + [
                    {**base, "startDate": day, **job_changes, "lastModified": now}
                ]
            person["lastModified"] = now

    def terminate(self, pid: str, on: str | None = None) -> None:
        """The last day worked is `on`; the Terminated slice starts the day after."""
        with self.lock:
            last = date.fromisoformat(on or date.today().isoformat())
            employment = self._current(pid)
            employment.update(endDate=last.isoformat(), lastModified=_now())
            self.change(pid, on=date.fromordinal(last.toordinal() + 1).isoformat(), emplStatus="T")

    def remove(self, pid: str) -> None:
        """The person is purged (a hire entered by mistake)."""
        with self.lock:
            del self.people[pid]

    def email_of(self, pid: str, code: str = "B") -> str | None:
        held = self.people[pid]["emails"].get(code)
        return held["emailAddress"] if held else None


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _as_of(request: Request) -> tuple[date | None, tuple[date, date] | None]:
    q = request.query_params
    if "asOfDate" in q and ("fromDate" in q or "toDate" in q):
        raise FilterError("asOfDate cannot be used together with fromDate or toDate")
    if "fromDate" in q or "toDate" in q:
        return None, (
            date.fromisoformat(q.get("fromDate", "1900-01-01")),
            date.fromisoformat(q.get("toDate", "9999-12-31")),
        )
    return date.fromisoformat(q["asOfDate"]) if "asOfDate" in q else date.today(), None


def create_app(state: SuccessFactorsState) -> Starlette:
    def refused(request: Request) -> Response | None:
        if (status := state.faults.take()) is not None:
            message = (
                "The Successfactors HCM suite is currently undergoing scheduled maintenance"
                if status == 503
                else "Internal Server Error"
            )
            return _error(status, "COE_GENERAL_SERVER_FAILURE", message)
        if not state.gate.admit():
            return _error(429, "COE_TOO_MANY_REQUESTS", "Too Many Requests", {"Retry-After": str(state.retry_after)})
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value in state.tokens:
            pass
        elif scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            if user != f"{state.username}@{state.company_id}" or not secrets.compare_digest(
                password.encode(), state.password.encode()
            ):
                return _error(
                    401,
                    "AUTHENTICATION_FAILED",
                    "Authentication failed. You have entered an incorrect username or password (status code = 4).",
                )
        else:
            return _error(401, "AUTHENTICATION_FAILED", "Authentication credentials are required.")
        if state.denied(request.url.path + "?" + str(request.query_params)):
            return _error(403, "PERMISSION_DENIED", "The user does not have permission to read this entity")
        return None

    def root(request: Request) -> str:
        return str(request.url.replace(query="")).split("/odata/v2/")[0] + "/odata/v2"

    def page(request: Request, keys: list[str], render: Any) -> Response:
        """One page of `keys`, fixed at the first page (snapshot paging), with `__next` when more."""
        q = request.query_params
        size = min(int(q.get("customPageSize") or q.get("$top") or MAX_PAGE), MAX_PAGE)
        token = q.get("$skiptoken")
        if token:
            try:
                snap, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
                keys, start = state.snapshots[snap], int(offset)
            except (ValueError, KeyError):
                return _error(400, "COE_BAD_REQUEST", "Invalid $skiptoken")
        else:
            snap, start = secrets.token_hex(6), 0
            state.snapshots[snap] = keys
        rows = [r for k in keys[start : start + size] if (r := render(k)) is not None]
        body: dict[str, Any] = {"results": rows}
        if start + size < len(keys):
            params = [(k, v) for k, v in q.multi_items() if k != "$skiptoken"]
            token = base64.urlsafe_b64encode(f"{snap}:{start + size}".encode()).decode()
            query = "&".join(f"{k}={v}" for k, v in params) + f"&$skiptoken={token}"
            body["__next"] = str(request.url.replace(query=query))
        return JSONResponse({"d": body})

    def people(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        q = request.query_params
        try:
            as_of, _span = _as_of(request)
            test = compile_filter(q.get("$filter"))
        except (FilterError, ValueError) as exc:
            return _error(400, "COE_PROPERTY_NOT_FOUND", f"[COE0019]{exc}")
        expand = {e.strip() for e in q.get("$expand", "").split(",") if e.strip()}
        everything = Writer(root(request), None, None, state.people)
        view = Writer(root(request), expand, as_of, state.people)
        with state.lock:
            if q.get("$skiptoken"):
                keys = []
            else:
                keys = [pid for pid in sorted(state.people) if test(everything.person(state.people[pid]))]
            return page(request, keys, lambda pid: view.person(state.people[pid]) if pid in state.people else None)

    def jobs(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        q = request.query_params
        try:
            as_of, span = _as_of(request)
            test = compile_filter(q.get("$filter"))
        except (FilterError, ValueError) as exc:
            return _error(400, "COE_PROPERTY_NOT_FOUND", f"[COE0019]{exc}")
        expand = {e.strip() for e in q.get("$expand", "").split(",") if e.strip()}
        writer = Writer(root(request), expand, as_of, state.people)
        found: dict[str, dict[str, Any]] = {}
        with state.lock:
            for person in state.people.values():
                for employment in person["employments"]:
                    for s in writer.slices(employment):
                        if span is not None:
                            keep = str(s["startDate"]) <= span[1].isoformat() and s["endDate"] >= span[0].isoformat()
                        else:
                            keep = s in writer.in_effect([s], as_of)
                        entity = writer.job(employment["userId"], s, "") if keep else None
                        if entity is not None and test(entity):
                            found[f"{employment['userId']}|{s['startDate']}"] = entity
        return page(request, sorted(found), found.get)

    def emails(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        key = request.path_params.get("key")
        writer = Writer(root(request), set(), None, state.people)
        with state.lock:
            rows = [
                writer.email(p, code, held) for p in state.people.values() for code, held in sorted(p["emails"].items())
            ]
        if key is not None:
            wanted = dict(part.split("=", 1) for part in key.split(","))
            match = [
                r
                for r in rows
                if f"'{r['emailType']}'" == wanted.get("emailType")
                and f"'{r['personIdExternal']}'" == wanted.get("personIdExternal")
            ]
            if not match:
                return _error(404, "COE_RESOURCE_NOT_FOUND", f"[COE0018]No entity found for PerEmail({key})")
            return JSONResponse({"d": match[0]})
        try:
            test = compile_filter(request.query_params.get("$filter"))
        except FilterError as exc:
            return _error(400, "COE_PROPERTY_NOT_FOUND", f"[COE0019]{exc}")
        return JSONResponse({"d": {"results": [r for r in rows if test(r)]}})

    def picklist(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        if request.path_params["name"] != "ecEmailType":
            return _error(404, "COE_RESOURCE_NOT_FOUND", "[COE0018]No entity found")
        options = [{"id": i, "externalCode": c, "localeLabel": label} for c, (i, label) in EMAIL_TYPES.items()]
        return JSONResponse({"d": {"id": "ecEmailType", "picklistOptions": {"results": options}}})

    async def upsert(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        body = await request.json()
        outcomes = [upsert_one(n, item) for n, item in enumerate(body if isinstance(body, list) else [body])]
        return JSONResponse({"d": outcomes})

    def upsert_one(index: int, item: dict[str, Any]) -> dict[str, Any]:
        codes = {type_id: code for code, (type_id, _label) in EMAIL_TYPES.items()}
        pid, type_id = str(item.get("personIdExternal")), str(item.get("emailType"))
        key = f"PerEmail/emailType={type_id},PerEmail/personIdExternal={pid}"

        def outcome(message: str | None) -> dict[str, Any]:
            status = "ERROR" if message else "OK"
            return {
                "key": key,
                "status": status,
                "editStatus": None if message else "UPSERTED",
                "message": message,
                "index": index,
                "httpCode": 500 if message else 200,
                "inlineResults": None,
            }

        primary = item.get("isPrimary")
        with state.lock:
            if pid not in state.people or type_id not in codes:
                return outcome(f"Invalid key {key} with the index {index}")
            if not isinstance(primary, bool):
                return outcome("isPrimary contains an invalid flag for boolean field.")
            held = state.people[pid]["emails"]
            code = codes[type_id]
            if primary and any(e["isPrimary"] for c, e in held.items() if c != code):
                return outcome(f"A person can only have one primary email address with the index {index}")
            held[code] = {"emailAddress": str(item.get("emailAddress")), "isPrimary": primary, "lastModified": _now()}
            return outcome(None)

    def unknown(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        entity = request.path_params["entity"]
        return _error(400, "COE_ENTITY_NOT_FOUND", f"[COE0007]invalid entity (or function) name: {entity}")

    return Starlette(
        routes=[
            Route("/odata/v2/PerPerson", people),
            Route("/odata/v2/EmpJob", jobs),
            Route("/odata/v2/PerEmail", emails),
            Route("/odata/v2/PerEmail({key})", emails),
            Route("/odata/v2/Picklist('{name}')", picklist),
            Route("/odata/v2/upsert", upsert, methods=["POST"]),
            Route("/odata/v2/{entity}", unknown),
            *oauth_routes(state),
            *admin_routes(state),
        ]
    )


State = SuccessFactorsState  # the name the sandbox and tests look for in every vendor emulator

# What `provisioner sandbox` serves and prints for this vendor (engine/sandbox names no vendor).
SANDBOX_CREDENTIALS = {"password": "sandbox-successfactors-password"}
SANDBOX_RANK = 3


def sandbox_settings(url: str, state: SuccessFactorsState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}
    company_id: {state.company_id}
    username: {state.username}
    password: {state.password}
"""
