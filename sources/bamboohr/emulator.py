"""A BambooHR emulator: the documented paths, payloads, auth and errors, over real HTTP.

Serves both URL forms (`/api/gateway.php/{company}/v1/...` and `/api/v1/...`). Rate limiting
answers 429 + Retry-After (BambooHR's behaviour since 2026-09-16) or, with `throttle_status=503`,
the legacy 503 + Retry-After. `/_admin/...` is for tests and demos only: hire, change, terminate.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pycountry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.engine.kit.emulation import RateGate
from provisioner.sources.emulation import Vendor, ascii_local, compact, fake_people
from provisioner.sources.webhooks import hmac_hex

EMPLOYMENT_STATUSES = ["Full-Time"] * 8 + ["Part-Time", "Contractor"]
STANDARD_FIELDS = {
    "employeeNumber",
    "firstName",
    "lastName",
    "middleName",
    "preferredName",
    "displayName",
    "workEmail",
    "homeEmail",
    "bestEmail",
    "workPhone",
    "jobTitle",
    "department",
    "division",
    "location",
    "country",
    "status",
    "employmentHistoryStatus",
    "hireDate",
    "originalHireDate",
    "terminationDate",
    "supervisor",
    "supervisorId",
    "supervisorEId",
    "lastChanged",
}


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _country_name(alpha2: str) -> str:
    """BambooHR answers a country's name ("Germany"), not its code."""
    country = pycountry.countries.get(alpha_2=alpha2)
    return country.name if country is not None else alpha2


@dataclass
class EmulatorState(Vendor):
    api_key: str = field(default_factory=lambda: secrets.token_hex(20))
    company: str = "acme"
    employees: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: dict[str, str] = field(default_factory=dict)  # id -> when, for /employees/changed
    # BambooHR publishes no numbers; the gate only serves forced storms (gate.storm).
    gate: RateGate = field(default_factory=lambda: RateGate(rate=1000.0, burst=1000))
    throttle_status: int = 429  # 503 for the behaviour before 2026-09-16
    retry_after: int = 1
    # Fields the API key's user may not edit: an update naming one is refused with 403.
    locked_fields: set[str] = field(default_factory=set)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(100))

    def next_id(self) -> str:
        return str(next(self._ids))

    def seed(self, count: int, seed: int = 7) -> list[str]:
        """Employees hired over the last six years, all working today."""
        return [
            self.hire(
                first_name=p["first_name"],
                last_name=p["last_name"],
                department=p["department"],
                job_title=p["title"],
                location=p["location"],
                country=_country_name(p["country"]),
                hire_date=p["start_date"],
                employment=p["commitment"],
            )["id"]
            for p in fake_people(count, seed, starts=(-2190, -30), commitments=EMPLOYMENT_STATUSES)
        ]

    def hire(
        self,
        *,
        first_name: str,
        last_name: str,
        department: str = "Engineering",
        job_title: str = "Software Engineer",
        location: str = "Berlin",
        country: str = "Germany",
        hire_date: str | None = None,
        employment: str = "Full-Time",
        **extra: Any,
    ) -> dict[str, Any]:
        emp_id = self.next_id()
        local = ascii_local(first_name, last_name)
        start = hire_date or date.today().isoformat()
        record = {
            "id": emp_id,
            "employeeNumber": f"E{emp_id}",
            "firstName": first_name,
            "lastName": last_name,
            "middleName": None,
            "preferredName": None,
            "displayName": f"{first_name} {last_name}",
            "workEmail": f"{local}{emp_id}@acme.example",
            "homeEmail": f"{local}@home.example",
            "jobTitle": job_title,
            "department": department,
            "division": "Acme Corp",
            "location": location,
            "country": country,
            "status": "Inactive" if start > date.today().isoformat() else "Active",
            "employmentHistoryStatus": employment,
            "hireDate": start,
            "originalHireDate": start,
            "terminationDate": "0000-00-00",
            "supervisor": None,
            "supervisorId": None,
            "supervisorEId": None,
            "lastChanged": _now(),
        }
        record.update(extra)
        self.employees[emp_id] = record
        return record

    def change(self, emp_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        record = self.employees[emp_id]
        record.update({k: v for k, v in changes.items() if k in STANDARD_FIELDS})
        record["lastChanged"] = _now()
        return record

    def terminate(self, emp_id: str, on: str | None = None) -> dict[str, Any]:
        return self.change(
            emp_id,
            {
                "status": "Inactive",
                "employmentHistoryStatus": "Terminated",
                "terminationDate": on or date.today().isoformat(),
            },
        )

    def remove(self, emp_id: str) -> None:
        """The record is deleted (a hire entered by mistake); /employees/changed reports it."""
        del self.employees[emp_id]
        self.deleted[emp_id] = _now()

    def webhook(self, kind: str, emp_id: str) -> tuple[bytes, dict[str, str]]:
        """An event-based webhook, signed over the body followed by the timestamp header."""
        stamp = str(int(datetime.now(UTC).timestamp()))
        body = compact(
            {
                "type": kind,
                "timestamp": _now(),
                "data": {"companyId": self.company, "employeeId": emp_id, "changedFields": ["jobTitle"]},
            }
        )
        return body, {
            "X-BambooHR-Timestamp": stamp,
            "X-BambooHR-Signature": hmac_hex(self.webhook_secret, body + stamp.encode()),
            "User-Agent": "BambooHR-WebHooks/1.0 (+https://www.bamboohr.com)",
        }

    def rehire(self, emp_id: str, on: str | None = None) -> dict[str, Any]:
        return self.change(
            emp_id,
            {
                "status": "Active",
                "employmentHistoryStatus": "Full-Time",
                "terminationDate": "0000-00-00",
                "hireDate": on or date.today().isoformat(),
            },
        )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # BambooHR explains 4xx in a header and leaves the body empty.
    return Response(status_code=status, headers={"X-BambooHR-Error-Message": message, **(headers or {})})


def _project(record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    # Unknown or unpermitted fields are silently dropped, `id` is always there.
    return {"id": record["id"], **{f: record.get(f) for f in fields if f in STANDARD_FIELDS}}


def create_app(state: EmulatorState) -> Starlette:
    def guard(request: Request) -> Response | None:
        if (status := state.faults.take()) is not None:
            return _error(status, "Internal error")
        if not state.gate.admit():
            return _error(state.throttle_status, "Rate limit exceeded", {"Retry-After": str(state.retry_after)})
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        try:
            user = base64.b64decode(value).decode().split(":", 1)[0] if scheme.lower() == "basic" else ""
        except (ValueError, UnicodeDecodeError):
            user = ""
        if not secrets.compare_digest(user.encode(), state.api_key.encode()):
            return _error(401, "Invalid API key", {"WWW-Authenticate": 'Basic realm="api"'})
        if state.denied(request.url.path):
            return _error(403, "You do not have access to this resource")
        return None

    async def custom_report(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if request.query_params.get("format", "").lower() != "json":
            return _error(404, "Unsupported report format")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(400, "Request body could not be parsed as XML")
        body = await request.json()
        fields = [f for f in body.get("fields", []) if isinstance(f, str)]
        if len(fields) > 400:
            return _error(400, "Too many fields")
        wanted = set((body.get("filters") or {}).get("employeeIds") or [])
        rows = [_project(r, fields) for r in state.employees.values() if not wanted or r["id"] in wanted]
        return JSONResponse(
            {
                "title": body.get("title", ""),
                "fields": [{"id": f, "type": "text", "name": f} for f in fields if f in STANDARD_FIELDS],
                "employees": rows,
            }
        )

    async def directory(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        fields = [
            "displayName",
            "firstName",
            "lastName",
            "preferredName",
            "jobTitle",
            "workEmail",
            "department",
            "location",
            "division",
            "supervisor",
        ]
        rows = [_project(r, fields) for r in state.employees.values() if r["status"] == "Active"]
        if not rows:
            return _error(404, "Directory is empty")
        return JSONResponse({"fields": [{"id": f, "type": "text", "name": f} for f in fields], "employees": rows})

    async def employee(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        record = state.employees.get(request.path_params["emp_id"])
        if record is None:
            return _error(404, "Employee not found")
        fields = request.query_params.get("fields", "firstName,lastName").split(",")
        if len(fields) > 400:
            return _error(400, "Too many fields")
        return JSONResponse(_project(record, fields))

    async def update(request: Request) -> Response:
        """Update employee: the fields given change, unknown ones are ignored
        (https://documentation.bamboohr.com/reference/update-employee)."""
        if (denied := guard(request)) is not None:
            return denied
        emp_id = request.path_params["emp_id"]
        if emp_id not in state.employees:
            return _error(404, "Employee not found")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "Request body could not be parsed")
        if locked := sorted(set(body) & state.locked_fields):
            return _error(403, f"You do not have permission to edit {', '.join(locked)}")
        if (email := body.get("workEmail")) is not None and not _EMAIL.match(str(email)):
            return _error(400, "Invalid email address for field workEmail")
        state.change(emp_id, body)
        return Response(status_code=200)

    async def changed(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        since = request.query_params.get("since", "")
        try:
            cutoff = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            return _error(400, "Invalid or missing 'since'")
        rows = {
            r["id"]: {"id": r["id"], "action": "Updated", "lastChanged": r["lastChanged"]}
            for r in state.employees.values()
            if datetime.fromisoformat(r["lastChanged"]) >= cutoff
        }
        rows.update(
            {
                emp_id: {"id": emp_id, "action": "Deleted", "lastChanged": when}
                for emp_id, when in state.deleted.items()
                if datetime.fromisoformat(when) >= cutoff
            }
        )
        return JSONResponse({"latest": _now(), "employees": rows})

    async def admin_hire(request: Request) -> Response:
        return JSONResponse(state.hire(**await request.json()), status_code=201)

    async def admin_change(request: Request) -> Response:
        emp_id = request.path_params["emp_id"]
        if emp_id not in state.employees:
            return JSONResponse({"error": "unknown employee"}, status_code=404)
        action = request.path_params.get("action")
        body = await request.json() if await request.body() else {}
        if action == "terminate":
            return JSONResponse(state.terminate(emp_id, body.get("on")))
        if action == "rehire":
            return JSONResponse(state.rehire(emp_id, body.get("on")))
        return JSONResponse(state.change(emp_id, body))

    async def admin_faults(request: Request) -> Response:
        body = await request.json()
        state.gate.storm = int(body.get("throttle", state.gate.storm))
        state.throttle_status = int(body.get("throttle_status", state.throttle_status))
        state.retry_after = int(body.get("retry_after", state.retry_after))
        state.faults.fail_next = int(body.get("fail", state.faults.fail_next))
        state.faults.fail_status = int(body.get("fail_status", state.faults.fail_status))
        return JSONResponse({"requests": state.faults.requests})

    routes = []
    for prefix in ("/api/gateway.php/{company}", "/api"):
        routes += [
            Route(prefix + "/v1/reports/custom", custom_report, methods=["POST"]),
            Route(prefix + "/v1/employees/directory", directory, methods=["GET"]),
            Route(prefix + "/v1/employees/changed", changed, methods=["GET"]),
            Route(prefix + "/v1/employees/{emp_id}", employee, methods=["GET"]),
            Route(prefix + "/v1/employees/{emp_id}", update, methods=["POST"]),
        ]
    routes += [
        Route("/_admin/employees", admin_hire, methods=["POST"]),
        Route("/_admin/employees/{emp_id}", admin_change, methods=["PATCH"]),
        Route("/_admin/employees/{emp_id}/{action:str}", admin_change, methods=["POST"]),
        Route("/_admin/faults", admin_faults, methods=["POST"]),
    ]
    return Starlette(routes=routes)


State = EmulatorState  # the name the sandbox and tests look for in every vendor emulator


# What `provisioner sandbox` serves and prints for this vendor (engine/sandbox names no vendor).
# Fixed credentials, so examples/hris-and-ats.yaml works against the sandbox as documented.
SANDBOX_CREDENTIALS = {"api_key": "sandbox-bamboohr-key"}
SANDBOX_RANK = 1  # where its entry sits in the printed config


def sandbox_settings(url: str, state: EmulatorState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}/api/gateway.php/acme
    api_key: {state.api_key}
"""
