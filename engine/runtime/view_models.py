"""The answers of the operations surface as typed models: `provisioner status --json`, the API's
OpenAPI schema and the console render these, so the three cannot drift apart."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from provisioner.engine.contracts.records import AccessNotRemoved, MayKeepAccess


class SourceView(BaseModel):
    source: str
    type: str
    halted: bool
    reason: str | None = None
    halted_at: datetime | None = None
    last_poll: datetime | None = None
    workers: int = 0
    last_read: str | None = None
    last_full_read: str | None = None
    poll_interval_s: float
    up: bool = Field(description="false while the source's polls fail")
    failing: str | None = Field(default=None, description="why its polls fail, if they do")
    failing_since: datetime | None = None
    quarantined: int = Field(default=0, description="records its latest poll held back")


class FailureCounts(BaseModel):
    retrying: int = 0
    dead: int = 0
    latest_error: str | None = None


class EngineView(BaseModel):
    id: str
    host: str
    partitions: list[str]
    lag: int = Field(description="records of its partitions not yet done")
    in_flight: int
    last_progress: datetime | None
    seen_at: datetime
    recording_error: str | None = Field(default=None, description="why its last batch of outcomes was not recorded")
    stalled: bool = Field(description="work waiting and nothing recorded for engine.stall_seconds")


class Status(BaseModel):
    sources: list[SourceView]
    engines: list[EngineView] = Field(default_factory=list, description="engines heard from in the last minute")
    unapplied_events: int
    scheduled: int
    next_scheduled: datetime | None = None
    failures: dict[str, FailureCounts] = Field(description="per target: writes retrying, dead, the latest error")
    retrying: int = Field(description="writes that failed and will be tried again")
    dead: int = Field(description="writes dead-lettered until a person retries them")
    quarantined: int = Field(description="records held back as bad input")
    halted: list[str] = Field(description="sources halted by the mass-deprovision guard")
    access_not_removed: list[AccessNotRemoved] = Field(
        default_factory=list, description="people who left or moved out of scope and still hold access"
    )
    may_keep_access: list[MayKeepAccess] = Field(
        default_factory=list, description="people holding accounts whose source record could not be read"
    )
    waiting_for_manager: int = Field(default=0, description="people whose manager has no account there yet")


class TargetView(BaseModel):
    target: str
    type: str
    base_url: str
    accounts_active: int
    accounts_disabled: int
    last_result: str | None = Field(default=None, description="result of the last action taken there")
    last_action_at: datetime | None = None
    last_error: str | None = None
    failures: int
    healthy: bool = Field(description="its last action did not fail and nothing for it is failing")
    learned: dict[str, str] = Field(
        default_factory=dict, description="what the app was found to do and not do (kept per target; any process)"
    )
    learned_at: datetime | None = None


class WorkerSummary(BaseModel):
    id: str
    source: str
    name: str
    work_email: str | None = None
    status: str
    department: str | None = None
    title: str | None = None
