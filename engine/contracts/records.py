"""Plain records the plugins take and return: which account is whose (a link), what was done (a log
entry), and what applying one event changed. The store maps them to and from its table rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.models import Action


def utcnow() -> datetime:
    return datetime.now(UTC)


class Link(BaseModel):
    """Which account in a target belongs to which worker, and what we last wrote to it."""

    worker_id: str
    target: str
    account_id: str
    active: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)
    groups: list[str] = Field(default_factory=list)
    updated_at: datetime = Field(default_factory=utcnow)


class LogEntry(BaseModel):
    """One row of the provisioning log: an action taken, a plan that failed, a quarantined record."""

    id: int | None = None
    time: datetime = Field(default_factory=utcnow)
    event_id: str | None = None
    worker_id: str
    target: str | None = None
    action: str
    policy: str | None = None
    reason: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    result: str
    error: str | None = None
    duration_ms: float = 0.0


LinkKey = tuple[str, str]  # (worker id, target)


def by_worker(links: dict[LinkKey, Link]) -> dict[str, dict[str, Link]]:
    """Links keyed by (worker, target) regrouped: worker id → target → link."""
    out: dict[str, dict[str, Link]] = {}
    for (worker_id, target), link in links.items():
        out.setdefault(worker_id, {})[target] = link
    return out


class EventOutcome:
    """What applying one event changed, to be recorded atomically with the rest of its batch."""

    def __init__(self, event_id: str, event: WorkerEvent | None = None):
        self.event_id = event_id
        self.event = event
        self.links: list[Link] = []
        self.unlinked: list[LinkKey] = []
        self.log: list[LogEntry] = []
        self.deferred: list[Action] | None = None  # None: the plan did not run; [] clears the schedule
        self.failed = False

    @property
    def status(self) -> str:
        return "failure" if self.failed else "success"
