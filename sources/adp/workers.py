"""One ADP Worker v2 record (`GET /hr/v2/workers`) as Worker fields.

ADP writes codes with display names beside them (`{"codeValue": "T", "shortName": "Terminated"}`);
names are read from `shortName` (or `longName`), states from `codeValue`. Field paths as in ADP's
Worker v2 samples (https://github.com/adpllc/marketplace-sample-payloads, wfn/hr/workers-v2) and
https://developers.adp.com/articles/general/introduction-to-adp-restful-apis.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from provisioner.sources.values import employment_type, fold

# workerStatus.statusCode.codeValue: Active | Inactive (on leave) | Terminated; the primary work
# assignment's assignmentStatus codes A | L | T say the same per assignment.
_WORKER_STATUS = {"active": "active", "inactive": "on_leave", "terminated": "terminated", "deceased": "terminated"}
_ASSIGNMENT_STATUS = {"a": "active", "l": "on_leave", "t": "terminated", "d": "terminated", "r": "terminated"}
_DEPARTMENT = {"department", "homedepartment", "home department"}


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _name(code: Any) -> str | None:
    """The display name of an ADP code: shortName, longName, else the code itself."""
    if not isinstance(code, dict):
        return None
    return code.get("shortName") or code.get("longName") or code.get("codeValue") or None


def _date(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def primary_assignment(record: dict[str, Any]) -> dict[str, Any]:
    assignments = [a for a in record.get("workAssignments") or [] if isinstance(a, dict)]
    primary = [a for a in assignments if a.get("primaryIndicator")]
    return (primary or assignments or [{}])[0]


def _unit(assignment: dict[str, Any], *types: str) -> dict[str, Any] | None:
    """The organizational unit of one of these types: the home unit (where HR files the person)
    first, else the assigned one."""
    for key in ("homeOrganizationalUnits", "assignedOrganizationalUnits"):
        for unit in assignment.get(key) or []:
            if fold(_get(unit, "typeCode", "codeValue")) in types:
                return unit.get("nameCode") if isinstance(unit, dict) else None
    return None


def _email(emails: Any) -> str | None:
    for email in emails if isinstance(emails, list) else []:
        if isinstance(email, dict) and email.get("emailUri"):
            return str(email["emailUri"])
    return None


def status(record: dict[str, Any], assignment: dict[str, Any], hired: date | None, today: date) -> str:
    worker_code = fold(_get(record, "workerStatus", "statusCode", "codeValue"))
    assignment_code = fold(_get(assignment, "assignmentStatus", "statusCode", "codeValue"))
    said = _WORKER_STATUS.get(worker_code) or _ASSIGNMENT_STATUS.get(assignment_code)
    if said is None:
        raise ValueError(f"unknown workerStatus {worker_code or assignment_code!r}")
    if said == "active" and hired and hired > today:
        return "pending"  # ADP lists a future hire as Active, dated ahead
    return said


def worker_fields(record: dict[str, Any], source: str, today: date | None = None) -> dict[str, Any]:
    today = today or date.today()
    person = record.get("person") or {}
    work = primary_assignment(record)
    dates = record.get("workerDates") or {}
    hired = _date(work.get("hireDate") or dates.get("rehireDate") or dates.get("originalHireDate"))
    ended = _date(work.get("terminationDate") or dates.get("terminationDate"))
    if ended and hired and ended < hired:
        ended = None  # after a rehire workerDates keeps the previous employment's last day
    manager = next((r.get("associateOID") for r in work.get("reportsTo") or [] if isinstance(r, dict)), None)
    location = work.get("homeWorkLocation") or {}
    kind = _name(work.get("workerTypeCode"))
    cost = _unit(work, "cost number", "homecostnumber", "home cost number")
    return {
        "employee_number": _get(record, "workerID", "idValue"),
        "first_name": _get(person, "legalName", "givenName"),
        "last_name": _get(person, "legalName", "familyName1"),
        "preferred_name": _get(person, "preferredName", "givenName"),
        "work_email": _email(_get(record, "businessCommunication", "emails")),
        "personal_email": _email(_get(person, "communication", "emails")),
        "title": work.get("jobTitle") or _name(work.get("jobCode")),
        "department": _name(_unit(work, *_DEPARTMENT)),
        "division": _name(_unit(work, "business unit")),
        "cost_center": cost.get("codeValue") if cost else None,
        "location": _name(location.get("nameCode")) or _get(location, "address", "cityName"),
        "country": _get(location, "address", "countryCode"),
        "manager_id": f"{source}:{manager}" if manager else None,
        "employment_type": employment_type(kind) if kind else None,
        "status": status(record, work, hired, today),
        "start_date": hired,
        "termination_date": ended,
        "custom": {k: v for k, v in {"position_id": work.get("positionID")}.items() if v},
    }
