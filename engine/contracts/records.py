"""Plain records the plugins take and return: which account is whose (a link), what was done (a log
entry), and what applying one event changed. The store maps them to and from its table rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.models import Action
from provisioner.engine.contracts.tracecontext import current_trace_id


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


# Every result a log row can carry, and what it means to the person reading it: the CLI and the
# console colour it the same way (ok green, bad red, warn amber).
MCP_CALL = "mcp_call"  # the log action of an agent's tool call: a record of asking, not a change
RESULT_TONE = {"success": "ok", "failure": "bad", "dead": "bad", "retrying": "warn", "skipped": "warn"}


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
    # The trace of the change that wrote it (the span current when the entry is made).
    trace_id: str | None = Field(default_factory=current_trace_id)


LinkKey = tuple[str, str]  # (worker id, target)

ANY_TARGET = "*"  # a failure before any target was reached: the policies, or the engine itself


class Failure(BaseModel):
    """A write that did not happen yet: retrying on a schedule, or dead until a person retries it."""

    worker_id: str
    target: str
    action: str
    state: Literal["retrying", "dead"]
    attempts: int
    next_at: datetime | None = None  # None while retrying: the retry is on its way through the engine
    first_error: str
    last_error: str
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class TargetFailure:
    """How one event failed at one target; transient failures (429, 5xx, timeouts, refused
    connections) are retried later, the others are dead letters at once."""

    target: str
    action: str
    error: str
    transient: bool


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
        self.failures: list[TargetFailure] = []
        # Targets this worker now matches at (the plan is full-state, so a clean run heals a failure).
        self.settled: list[str] = []
        # None: not planned. Else (target, worker id) of each person the plan names (a manager)
        # who has no account there yet.
        self.unresolved: list[tuple[str, str]] | None = None
        # None: not planned. Else the keys of the gated grants whose reason still holds (any other
        # approval of this worker is void), with `requests` the grants that wait for one.
        self.lasting: set[str] | None = None
        self.requests: list[Action] = []

    def fail(self, target: str, action: str, error: str, transient: bool) -> None:
        self.failed = True
        self.failures.append(TargetFailure(target, action, error, transient))

    @property
    def status(self) -> str:
        return "failure" if self.failed else "success"


class AccessNotRemoved(BaseModel):
    """A person who left, or moved out of a target's scope, and still holds access there because its
    removal failed: the worst failure there is."""

    worker_id: str
    target: str
    account_id: str
    remains: list[str] = Field(description="what is still there: the active account, memberships")
    since: datetime = Field(description="when removing it first failed")
    error: str


class MayKeepAccess(BaseModel):
    """A person who holds accounts while their record could not be read: any change the source
    holds for them (a termination) cannot be applied."""

    worker_id: str
    source: str
    targets: list[str]
    reason: str
    since: datetime
