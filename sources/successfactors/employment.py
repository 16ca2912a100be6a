"""Which of a person's employments speaks for them, and whether an ending one is followed by
another without a gap. Employee Central adds an EmpEmployment (with its own User) to the same
person for a conversion, a rehire that reuses the person, or a global assignment
(https://learn.microsoft.com/en-us/entra/identity/app-provisioning/sap-successfactors-integration-reference)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from provisioner.sources.successfactors.odata import parse_day as _day


def current_employment(employments: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """The employment that speaks for the person: the one in effect today, else the next one to
    start (a pre-hire, or a conversion's new record), else the one that ended last."""

    def started(e: dict[str, Any]) -> date:
        return _day(e.get("startDate")) or date.min

    def ended(e: dict[str, Any]) -> date | None:
        return _day(e.get("endDate"))

    live = [e for e in employments if started(e) <= today and not ((end := ended(e)) and end < today)]
    if live:
        return max(live, key=started)
    future = [e for e in employments if started(e) > today]
    if future:
        return min(future, key=started)
    return max(employments, key=lambda e: ended(e) or started(e), default={})


def continues(employments: list[dict[str, Any]], ending: dict[str, Any], last_day: date) -> bool:
    """Whether another employment of the person starts by the day after `last_day` and is not over
    before it starts: Employee Central's conversion (contractor to employee) or seamless rehire,
    which adds an employment to the same person."""
    for other in employments:
        first = _day(other.get("startDate"))
        end = _day(other.get("endDate"))
        if other is not ending and first is not None and first <= last_day + timedelta(days=1):
            if (end is None or end > last_day) and first >= (_day(ending.get("startDate")) or date.min):
                return True
    return False
