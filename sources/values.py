"""Vendor values every connector reads the same way, written once: statuses, employment types and
dates. HR systems write them in their own words and case (`Terminated`, `TERMINATED`, `Inactive`,
`Leave of absence`, `Full-Time`, `FT`); the engine compares them folded and through these synonyms,
so an export read as its vendor wrote it means what it says."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# What HR systems and ATSs call an employment type, folded (lowercase, separators as one space),
# mapped to the Worker's vocabulary. Anything else named is "other"; nothing named is None.
# BambooHR's employment statuses read `Full-Time`, `Part-Time`, `Contractor`, `Intern`
# (https://documentation.bamboohr.com/docs/list-of-field-names, employmentHistoryStatus); Workday
# tells employees from contingent workers (Worker_Reference Employee_ID | Contingent_Worker_ID,
# https://community.workday.com/sites/default/files/file-hosting/productionapi/Human_Resources/v40.0/Get_Workers.html);
# `FT`/`PT` are the abbreviations spreadsheet exports use.
_EMPLOYMENT_TYPES = {
    "full time": "full_time",
    "fulltime": "full_time",
    "regular": "full_time",
    "permanent": "full_time",
    "ft": "full_time",
    "fte": "full_time",
    "full time employee": "full_time",
    "part time": "part_time",
    "parttime": "part_time",
    "pt": "part_time",
    "part time employee": "part_time",
    "contractor": "contractor",
    "contract": "contractor",
    "contingent": "contractor",
    "contingent worker": "contractor",
    "independent contractor": "contractor",
    "consultant": "contractor",
    "freelance": "contractor",
    "intern": "intern",
    "internship": "intern",
    "temporary": "temporary",
    "temp": "temporary",
    "seasonal": "temporary",
}

# Worker statuses as vendors write them, folded. BambooHR's `status` is `Active` | `Inactive` and its
# employment status list ends in `Terminated`
# (https://documentation.bamboohr.com/docs/list-of-field-names); Personio's employee status is
# `active` | `inactive` | `onboarding` | `leave`
# (https://developer.personio.de/reference/get_company-employees); Workday's Worker_Status_Data says
# Active, Terminated and On_Leave, shown as "Leave of Absence"
# (https://community.workday.com/sites/default/files/file-hosting/productionapi/Human_Resources/v40.0/Get_Workers.html).
# "Inactive" means gone: a future hire BambooHR marks Inactive is read by its own connector.
_STATUSES = {
    "active": "active",
    "employed": "active",
    "current": "active",
    "pending": "pending",
    "pre hire": "pending",
    "prehire": "pending",
    "onboarding": "pending",
    "on leave": "on_leave",
    "leave": "on_leave",
    "leave of absence": "on_leave",
    "on leave of absence": "on_leave",
    "loa": "on_leave",
    "terminated": "terminated",
    "termed": "terminated",
    "inactive": "terminated",
    "separated": "terminated",
    "former": "terminated",
    "former employee": "terminated",
}


def fold(value: Any) -> str:
    """'Full-Time', 'full_time' and ' FULL  time' all read 'full time': vendors disagree on case
    and separators (and display names drift), never on the words."""
    return re.sub(r"[\s_\-]+", " ", str(value or "")).strip().lower()


def employment_type(value: Any) -> str | None:
    """A vendor's employment type (display name or code) as a Worker `employment_type`."""
    folded = fold(value)
    return _EMPLOYMENT_TYPES.get(folded, "other") if folded else None


def status(value: Any) -> Any:
    """A vendor's status as a Worker `status`; a value no vendor uses is kept as written, so that
    the record is quarantined with it named."""
    folded = fold(value)
    return _STATUSES.get(folded, value) if folded else None


def as_written(fields: dict[str, Any]) -> dict[str, Any]:
    """Worker fields an export or a REST mapping gave verbatim, with status and employment type
    read through the vendors' words (an absent status stays absent: the Worker's default)."""
    if fields.get("status") not in (None, ""):
        fields["status"] = status(fields["status"])
    if fields.get("employment_type") not in (None, ""):
        fields["employment_type"] = employment_type(fields["employment_type"])
    return fields


def iso_datetime(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp as vendors send it ('Z' or '+00:00'), or None."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
