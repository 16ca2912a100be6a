"""`type: bamboohr` — every employee, inactive ones included, through the custom-report endpoint.

Facts: BambooHR's API reference (https://documentation.bamboohr.com/reference). `base_url` is
everything before `/v1`, in either
of the two documented forms: `https://api.bamboohr.com/api/gateway.php/<company>` (legacy) or
`https://<company>.bamboohr.com/api` (newer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from typing import Any

import httpx
import pycountry
from pydantic import SecretStr

from provisioner.engine.contracts.protocols import SourceError, WritebackRefused
from provisioner.engine.kit.http import describe_http_error, transient_status
from provisioner.engine.kit.paging import PagingError
from provisioner.sources.base import HttpSource, HttpSourceSettings, iso_utc
from provisioner.sources.values import employment_type

# The directory endpoint shows active people only; this report returns everyone regardless of status.
REPORT_PATH = "/v1/reports/custom"
FIELDS = [
    "employeeNumber",
    "firstName",
    "lastName",
    "preferredName",
    "displayName",
    "workEmail",
    "homeEmail",
    "jobTitle",
    "department",
    "division",
    "location",
    "country",
    "status",
    "employmentHistoryStatus",
    "hireDate",
    "terminationDate",
    "supervisorId",
    "supervisorEId",
    "lastChanged",
]
_ON_LEAVE = {"leave of absence", "on leave", "furloughed"}
# Worker field → the BambooHR field a writeback sets (https://documentation.bamboohr.com/docs/list-of-field-names);
# BambooHR has no username field.
WRITABLE = {"work_email": "workEmail", "phone": "workPhone"}


class BambooHRSettings(HttpSourceSettings):
    api_key: SecretStr | None = None


def _date(value: str | None) -> date | None:
    # BambooHR writes an unset date as 0000-00-00.
    if not value or value.startswith("0000"):
        return None
    return date.fromisoformat(value[:10])


def _country(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return pycountry.countries.lookup(value).alpha_2
    except LookupError:
        return None


def employee_to_worker(record: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """Map one report row (strings or null) to Worker fields."""
    today = today or date.today()
    hired = _date(record.get("hireDate"))
    terminated = _date(record.get("terminationDate"))
    history = (record.get("employmentHistoryStatus") or "").strip().lower()
    active = (record.get("status") or "").lower() == "active"
    if terminated and terminated <= today and not active:
        status = "terminated"
    elif hired and hired > today and not (terminated and terminated < hired):
        # Future hires carry status Inactive in BambooHR until their start date.
        status = "pending"
    elif history in _ON_LEAVE:
        status = "on_leave"
    else:
        status = "active" if active else "terminated"
    # supervisorId vs supervisorEId: sources disagree on which holds the BambooHR id (facts §1,
    # conflict). We join on supervisorId and keep supervisorEId in custom for the other reading.
    supervisor = record.get("supervisorId")
    changed = record.get("lastChanged")
    return {
        "employee_number": record.get("employeeNumber"),
        "first_name": record.get("firstName"),
        "last_name": record.get("lastName"),
        "preferred_name": record.get("preferredName"),
        "display_name": record.get("displayName"),
        "work_email": record.get("workEmail"),
        "personal_email": record.get("homeEmail"),
        "title": record.get("jobTitle"),
        "department": record.get("department"),
        "division": record.get("division"),
        "location": record.get("location"),
        "country": _country(record.get("country")),
        "manager_id": f"bamboohr:{supervisor}" if supervisor else None,
        "employment_type": employment_type(history) if history != "terminated" else None,
        "status": status,
        "start_date": hired,
        "termination_date": terminated,
        "custom": {k: v for k, v in {"supervisorEId": record.get("supervisorEId")}.items() if v},
        "updated_at": datetime.fromisoformat(changed.replace("Z", "+00:00")) if changed else None,
    }


class BambooHRSource(HttpSource):
    """Full reads take the custom report (everyone, inactive included); incremental reads ask
    `/employees/changed` which ids changed, then report just those. Deleted ids are removals."""

    writable = frozenset(WRITABLE)
    vendor = "BambooHR"
    settings_model = BambooHRSettings
    credential_hint = "api_key"
    # The key is the Basic username; the password is ignored, clients send "x".
    key_field, key_auth = "api_key", {"type": "basic", "username": "{key}", "password": "x"}

    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        filters: dict[str, Any] = {}
        if since is not None:
            changed = await self.get_json("/v1/employees/changed", {"since": iso_utc(since)})
            entries = (changed.get("employees") or {}).values()  # an object keyed by id, not a list
            self.note_gone(str(e["id"]) for e in entries if e.get("action") == "Deleted")
            wanted = [str(e["id"]) for e in entries if e.get("action") != "Deleted"]
            if not wanted:
                return
            filters = {"employeeIds": wanted}
        response = await self.client.post(
            REPORT_PATH,
            params={"format": "json"},
            json={"title": "provisioner", "fields": FIELDS, **({"filters": filters} if filters else {})},
        )
        if response.status_code != 200:
            raise PagingError(response)
        for employee in response.json().get("employees") or []:
            yield employee

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        found = await self.get_json(f"/v1/employees/{remote_id}", {"fields": ",".join(FIELDS)}, missing_ok=True)
        return {**found, "id": remote_id} if found is not None else None

    def to_worker(self, record: dict[str, Any]) -> dict[str, Any]:
        return employee_to_worker(record)

    async def write_back(self, remote_id: str, values: Mapping[str, str]) -> None:
        """`POST /v1/employees/{id}` with the fields to change, then one read-back: BambooHR drops
        fields it does not know or the key may not edit without saying so
        (https://documentation.bamboohr.com/reference/update-employee)."""
        unknown = sorted(set(values) - set(WRITABLE))
        if unknown:
            raise WritebackRefused(f"source {self.name}: BambooHR has no field for {', '.join(unknown)}")
        body = {WRITABLE[name]: value for name, value in values.items()}
        path = f"/v1/employees/{remote_id}"
        answer = await self._guarded(self._written(path, body))
        if answer.status_code != 200:
            error = f"source {self.name}: {describe_http_error(answer)}"
            raise SourceError(error) if transient_status(answer.status_code) else WritebackRefused(error)
        held = answer.json()
        # The values are personal: the error names the fields only.
        if wrong := [key for key, value in body.items() if held.get(key) != value]:
            raise WritebackRefused(f"source {self.name}: BambooHR answered 200 and kept its {', '.join(wrong)}")

    async def _written(self, path: str, body: dict[str, str]) -> httpx.Response:
        answer = await self.client.post(path, json=body)
        return await self.client.get(path, params={"fields": ",".join(body)}) if answer.status_code == 200 else answer
