"""`type: bamboohr` — every employee, inactive ones included, through the custom-report endpoint.

Facts: shared/reference/hris-api-facts.md §1. `base_url` is everything before `/v1`, in either
of the two documented forms: `https://api.bamboohr.com/api/gateway.php/<company>` (legacy) or
`https://<company>.bamboohr.com/api` (newer).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import httpx
import pycountry
from pydantic import BaseModel, ConfigDict, SecretStr

from engine.http import RetryPolicy, describe_http_error, resilient_client
from engine.protocols import SourceError, SourceRead, normalize_records

# The directory endpoint shows active people only; this report returns everyone regardless of status.
REPORT_PATH = "/v1/reports/custom"
FIELDS = [
    "employeeNumber", "firstName", "lastName", "preferredName", "displayName", "workEmail", "homeEmail",
    "jobTitle", "department", "division", "location", "country", "status", "employmentHistoryStatus",
    "hireDate", "terminationDate", "supervisorId", "supervisorEId", "lastChanged",
]
_EMPLOYMENT_TYPES = {
    "full-time": "full_time", "full time": "full_time", "part-time": "part_time", "part time": "part_time",
    "contractor": "contractor", "contract": "contractor", "intern": "intern", "internship": "intern",
    "temporary": "temporary", "seasonal": "temporary",
}
_ON_LEAVE = {"leave of absence", "on leave", "furloughed"}


class BambooHRSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str
    api_key: SecretStr
    timeout: float = 30.0
    max_attempts: int = 5
    backoff: float = 0.5
    webhook_secret: SecretStr | None = None  # the webhook's private key, for X-BambooHR-Signature


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
        "employment_type": _EMPLOYMENT_TYPES.get(history, "other" if history and history != "terminated" else None),
        "status": status,
        "start_date": hired,
        "termination_date": terminated,
        "custom": {k: v for k, v in {"supervisorEId": record.get("supervisorEId")}.items() if v},
        "updated_at": datetime.fromisoformat(changed.replace("Z", "+00:00")) if changed else None,
    }


class BambooHRSource:
    def __init__(self, name: str, settings: BambooHRSettings):
        self.name = name
        self.settings = settings
        self.client = resilient_client(
            settings.base_url.rstrip("/"),
            auth=(settings.api_key.get_secret_value(), "x"),
            headers={"Accept": "application/json"},
            timeout=settings.timeout,
            policy=RetryPolicy(max_attempts=settings.max_attempts, base_delay=settings.backoff),
        )

    @classmethod
    def from_settings(cls, name: str, settings: dict[str, Any]) -> BambooHRSource:
        return cls(name, BambooHRSettings.model_validate(settings))

    async def read(self, cursor: dict[str, Any]) -> SourceRead:
        try:
            response = await self.client.post(
                REPORT_PATH, params={"format": "json"},
                json={"title": "provisioner", "fields": FIELDS},
            )
        except httpx.HTTPError as exc:
            raise SourceError(f"source {self.name}: BambooHR unreachable: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise SourceError(
                f"source {self.name}: BambooHR refused the API key (HTTP {response.status_code}); "
                "check api_key and that its user may read all employees"
            )
        if response.status_code != 200:
            raise SourceError(f"source {self.name}: {describe_http_error(response)}")
        employees = response.json().get("employees") or []
        read = normalize_records(self.name, employees, employee_to_worker)
        read.cursor = {"last_full_read": datetime.now().astimezone().isoformat(), "records": len(employees)}
        return read

    async def fetch_one(self, remote_id: str) -> SourceRead:
        """One employee, for a webhook; a 404 means the record is gone."""
        try:
            response = await self.client.get(f"/v1/employees/{remote_id}", params={"fields": ",".join(FIELDS)})
        except httpx.HTTPError as exc:
            raise SourceError(f"source {self.name}: BambooHR unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            return SourceRead(complete=False, gone=[remote_id])
        if response.status_code != 200:
            raise SourceError(f"source {self.name}: {describe_http_error(response)}")
        read = normalize_records(self.name, [{"id": remote_id, **response.json()}], employee_to_worker)
        read.complete = False
        return read

    async def check(self) -> str:
        read = await self.read({})
        return f"credentials accepted; {len(read.workers)} employees readable"

    async def aclose(self) -> None:
        await self.client.aclose()
