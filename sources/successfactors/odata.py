"""What the SuccessFactors connector and its emulator share of OData v2's JSON format.

Dates: Edm.DateTime as `/Date(<ms since epoch>)/`, Edm.DateTimeOffset as `/Date(<ms>+0000)/`
(https://userapps.support.sap.com/sap/support/knowledge/en/3020341,
https://userapps.support.sap.com/sap/support/knowledge/en/2933028);
a collection is `{"results": [...]}` inside the `{"d": ...}` envelope; an error is
`{"error": {"code": "COE_...", "message": {"lang": "en-US", "value": "[COE0019]..."}}}`
(https://userapps.support.sap.com/sap/support/knowledge/en/2545055).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_date(day: date) -> str:
    """An Edm.DateTime date as SuccessFactors writes it: midnight UTC in epoch milliseconds."""
    return f"/Date({int((datetime(day.year, day.month, day.day, tzinfo=UTC) - EPOCH).total_seconds() * 1000)})/"


def ms_offset(moment: datetime) -> str:
    """An Edm.DateTimeOffset: epoch milliseconds and the offset, +0000 (stored in UTC)."""
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def parse_moment(value: Any) -> datetime | None:
    """`/Date(1700000000000)/` or `/Date(1700000000000+0000)/`; ValueError for anything else."""
    if value in (None, ""):
        return None
    found = _DATE.match(str(value))
    if not found:
        raise ValueError(f"not an OData date: {str(value)[:40]!r}")
    # the milliseconds are the instant; a +0000 suffix only says it was stored in UTC
    return EPOCH + timedelta(milliseconds=int(found.group(1)))


def parse_day(value: Any) -> date | None:
    moment = parse_moment(value)
    return moment.date() if moment is not None else None


def results(nav: Any) -> list[dict[str, Any]]:
    """The entities of an expanded navigation: `{"results": [...]}`, one entity, or none."""
    if isinstance(nav, dict):
        found = nav.get("results")
        return list(found) if isinstance(found, list) else [nav]
    return []


def one(nav: Any) -> dict[str, Any]:
    found = results(nav)
    return found[0] if found else {}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": {"lang": "en-US", "value": message}}}


def error_text(response: httpx.Response) -> str:
    """The message of an OData error answer, or its status."""
    try:
        error = response.json().get("error") or {}
        return f"{error.get('code')}: {(error.get('message') or {}).get('value')}"
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"


def offset_literal(moment: datetime) -> str:
    """A `$filter` literal for an Edm.DateTimeOffset property."""
    return f"datetimeoffset'{moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"


def day_literal(day: date) -> str:
    """A `$filter` literal for an Edm.DateTime (date) property."""
    return f"datetime'{day.isoformat()}T00:00:00'"
