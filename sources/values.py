"""Vendor values every connector reads the same way, written once: employment types and dates."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# What HR systems and ATSs call an employment type, folded (lowercase, separators as one space),
# mapped to the Worker's vocabulary. Anything else named is "other"; nothing named is None.
_EMPLOYMENT_TYPES = {
    "full time": "full_time",
    "fulltime": "full_time",
    "regular": "full_time",
    "permanent": "full_time",
    "part time": "part_time",
    "parttime": "part_time",
    "contractor": "contractor",
    "contract": "contractor",
    "contingent": "contractor",
    "freelance": "contractor",
    "intern": "intern",
    "internship": "intern",
    "temporary": "temporary",
    "temp": "temporary",
    "seasonal": "temporary",
}


def fold(value: Any) -> str:
    """'Full-Time', 'full_time' and ' FULL  time' all read 'full time': vendors disagree on case
    and separators (and display names drift), never on the words."""
    return re.sub(r"[\s_\-]+", " ", str(value or "")).strip().lower()


def employment_type(value: Any) -> str | None:
    """A vendor's employment type (display name or code) as a Worker `employment_type`."""
    folded = fold(value)
    return _EMPLOYMENT_TYPES.get(folded, "other") if folded else None


def iso_datetime(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp as vendors send it ('Z' or '+00:00'), or None."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
