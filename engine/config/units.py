"""Rates and durations as a config writes them: '20/s', '10/10s', '15m', '1h'."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_rate(value: str | int | float) -> float:
    """'20/s', '600/m', '10/10s' or a number per second → requests per second."""
    if isinstance(value, int | float):
        return float(value)
    count, _, per = value.partition("/")
    try:
        rate = float(count) / parse_duration(per if per and per[0].isdigit() else f"1{per or 's'}")
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a rate: {value!r} (use e.g. 20/s, 600/m, 10/10s)") from None
    if rate <= 0:
        raise ValueError(f"a rate limit must be positive, got {value!r}")
    return rate


def rate_window(value: Any) -> float | None:
    """'10/10s' → 10.0: the window a rate names explicitly (a vendor metering a rolling window), or
    None for '20/s' and plain numbers."""
    if isinstance(value, str) and "/" in value:
        per = value.partition("/")[2].strip()
        return parse_duration(per) if per and per[0].isdigit() else None
    return None


def parse_duration(value: str | int | float) -> float:
    """'90s', '15m', '1h', or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def moment_or_age(value: str, now: datetime | None = None) -> datetime:
    """A `since` filter: an ISO time (UTC unless it says otherwise) or an age such as 90m, 2h, 7d
    before now; ValueError otherwise. The CLI and the API read it the same way."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(value))
        except ValueError:
            raise ValueError(f"{value!r}: give an ISO time (2026-01-31T09:00) or an age (90m, 2h, 7d)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
