"""Ports the use cases are given instead of reaching for the world themselves.

`Clock` says what "now" is (lifecycle dates, due work, leases): the system clock in production, a
fixed or moved one in tests. The event bus port (`runtime/ports.py`: Kafka, or in memory) lives with
the runtime, which is its only user.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> datetime:
        """Now, timezone-aware (UTC)."""


def system_clock() -> datetime:
    return datetime.now(UTC)


class FixedClock:
    """A clock that stays where it is put until moved: tests of lifecycle dates and due work."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def move(self, to: datetime) -> None:
        self.now = to
