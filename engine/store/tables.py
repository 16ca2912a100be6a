"""The store's tables (SQLModel): one definition each, shared by SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from provisioner.engine.contracts.records import utcnow

PENDING_OPEN = "state = 'pending' AND ended_at IS NULL"  # the rows uq_approval_request_pending keeps unique


class Snapshot(SQLModel, table=True):
    source: str = Field(primary_key=True)
    worker_id: str = Field(primary_key=True)
    content_hash: str
    worker: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
    # The digest of the record as the source sent it (a streamed read compares it before building a
    # Worker); None when the snapshot came from a read that did not stream.
    record_digest: str | None = None


class Cursor(SQLModel, table=True):
    source: str = Field(primary_key=True)
    value: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class OutboxEvent(SQLModel, table=True):
    """An event not yet applied: written with the change that caused it, published by the relay,
    deleted in the unit of work that records its outcome. The table holds only what is in flight
    (an event not in it is done), so nothing here grows with the events ever applied."""

    # The relay's query (unpublished, in seq order) reads this index alone; an event leaves it
    # when it is published. AUTOINCREMENT: SQLite would otherwise give a new event the seq of one
    # just applied and deleted, and the relay, marking what it published by seq, would mark the new
    # one published unsent (PostgreSQL's sequence never hands a number out twice).
    __table_args__ = (
        Index(
            "ix_outboxevent_unpublished",
            "seq",
            sqlite_where=text("published_at IS NULL"),
            postgresql_where=text("published_at IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    worker_id: str
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None


class Handover(SQLModel, table=True):
    """A pre-hire from one source (an ATS) that became a worker of another (the HRIS): its
    accounts moved to the successor, and its own later events are ignored."""

    worker_id: str = Field(primary_key=True)
    successor: str = Field(index=True)
    key: str  # the correlation key that matched
    at: datetime = Field(default_factory=utcnow)


class Departed(SQLModel, table=True):
    """A worker its source no longer lists, and the stored state it left from: listed again, it is
    told against that, so a re-hire that reads exactly as the first hire did is a change of its own
    (it had the first hire's event id). One row per worker that ever left, rewritten when it leaves
    again."""

    source: str = Field(primary_key=True)
    worker_id: str = Field(primary_key=True)
    left_from: str  # the removed snapshot's `Snapshots.state_key`
    at: datetime = Field(default_factory=utcnow)


class LinkRow(SQLModel, table=True):
    """Which account in a target belongs to which worker, and what we last wrote to it."""

    __tablename__ = "link"

    worker_id: str = Field(primary_key=True)
    target: str = Field(primary_key=True)
    account_id: str = Field(index=True)
    active: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class LogRow(SQLModel, table=True):
    """The provisioning log: one row per action taken (or quarantined record)."""

    __tablename__ = "logentry"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(default_factory=utcnow, index=True)
    event_id: str | None = Field(default=None, index=True)
    worker_id: str = Field(index=True)
    target: str | None = None
    action: str
    policy: str | None = None
    reason: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: str
    error: str | None = None
    duration_ms: float = 0.0
    trace_id: str | None = None


class Deferred(SQLModel, table=True):
    """An action due later (pre-hire, end-of-day termination, grace period), kept until it fires."""

    id: int | None = Field(default=None, primary_key=True)
    worker_id: str = Field(index=True)
    target: str
    action: str
    effective_at: datetime = Field(index=True)
    policy: str | None = None
    reason: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    traceparent: str | None = None  # the change that deferred it: the firing's trace links to it


class SourceState(SQLModel, table=True):
    """Per source: halted by the mass-deprovision guard (and why), last poll, and why the last
    poll could not read the source at all (cleared by the next poll that can)."""

    source: str = Field(primary_key=True)
    halted: bool = False
    reason: str | None = None
    halted_at: datetime | None = None
    last_poll_at: datetime | None = None
    workers: int = 0
    failing: str | None = None
    failing_since: datetime | None = None


class QuarantineRow(SQLModel, table=True):
    """A record the latest poll of a source held back (duplicate id, undecodable row, shared
    email, …), with the reason; replaced by each poll of that source."""

    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    remote_id: str | None = None
    line: int | None = None
    reason: str
    at: datetime = Field(default_factory=utcnow)


class Approval(SQLModel, table=True):
    """`provisioner resume`: a person looked, so the deprovisions the guard would hold next for
    this source go through, once, within a day."""

    source: str = Field(primary_key=True)
    at: datetime = Field(default_factory=utcnow)


class WebhookNotice(SQLModel, table=True):
    """A webhook notice already accepted, by any engine process: a second delivery is a replay."""

    key: str = Field(primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)


class Lease(SQLModel, table=True):
    """Who runs a scheduled job this period: with several engine processes, exactly one does."""

    name: str = Field(primary_key=True)
    owner: str
    expires_at: datetime


class JobRun(SQLModel, table=True):
    """Each scheduled job that ran, where and when (for `status` and for the people debugging it)."""

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(index=True)
    owner: str
    started_at: datetime = Field(default_factory=utcnow)


class ReportRow(SQLModel, table=True):
    """The last report of a kind (the reconciler's), whichever process or command produced it."""

    __tablename__ = "report"

    kind: str = Field(primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class FailureRow(SQLModel, table=True):
    """A write that failed, per worker × target: retrying on a schedule, or a dead letter."""

    __tablename__ = "failure"

    worker_id: str = Field(primary_key=True)
    target: str = Field(primary_key=True)
    action: str
    state: str = Field(index=True)  # retrying | dead
    attempts: int = 0
    next_at: datetime | None = Field(default=None, index=True)
    first_error: str
    last_error: str
    first_at: datetime = Field(default_factory=utcnow)
    last_at: datetime = Field(default_factory=utcnow)
    traceparent: str | None = None  # the change that first failed: each retry's trace links to it


class EventClaim(SQLModel, table=True):
    """An event an engine is applying: taken before its writes run, so that after a rebalance the
    partition's new owner skips it instead of writing the same change again. A short lease, renewed
    by its owner's heartbeat and deleted when the outcome is recorded; taken over once expired."""

    event_id: str = Field(primary_key=True)
    owner: str = Field(index=True)
    expires_at: datetime = Field(index=True)


class TargetClaim(SQLModel, table=True):
    """A thing that must exist once per target (a group of a given name): the engine that inserts
    the row creates it and stores its id; the others wait for the id."""

    target: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)  # "group"
    name: str = Field(primary_key=True)
    owner: str
    remote_id: str | None = None
    expires_at: datetime


class EngineRow(SQLModel, table=True):
    """One row per running engine process, written by its heartbeat: what `status` lists."""

    __tablename__ = "engine"

    id: str = Field(primary_key=True)
    host: str
    partitions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    lag: int = 0
    in_flight: int = 0
    last_progress: datetime | None = None
    recording_error: str | None = None  # why the last batch of outcomes could not be recorded
    started_at: datetime = Field(default_factory=utcnow)
    seen_at: datetime = Field(default_factory=utcnow, index=True)


class AwaitingReference(SQLModel, table=True):
    """A person whose mapping names another (their manager) who has no account in that target yet:
    re-planned once that account is recorded, so the reference is written instead of forgotten."""

    __tablename__ = "awaiting_reference"

    worker_id: str = Field(primary_key=True)
    target: str = Field(primary_key=True)
    reference: str = Field(index=True)  # the worker id named, e.g. the manager's
    since: datetime = Field(default_factory=utcnow)


class ConsoleSession(SQLModel, table=True):
    """A console login that is still valid: logout and an operator's revoke delete it, so a copied
    cookie stops working at once, on every engine process."""

    __tablename__ = "console_session"

    id: str = Field(primary_key=True)  # the random part of the signed cookie
    issued_at: datetime = Field(default_factory=utcnow, index=True)
    address: str = ""  # where the login came from, for an operator reading the list


class ApprovalRow(SQLModel, table=True):
    """A grant one person waits on, and what became of it (docs/approvals.md). `ended_at` is set
    when the reason for the grant ends (a move out of scope, a leaver): the row is history then,
    and the same grant later asks again."""

    __tablename__ = "approval_request"
    # One pending request per thing asked, whoever asks: two engines recording the same grant, or two
    # agents asking at once, meet here (the insert that loses does nothing).
    __table_args__ = (
        Index(
            "uq_approval_request_pending",
            "kind",
            "worker_id",
            "key",
            unique=True,
            sqlite_where=text(PENDING_OPEN),
            postgresql_where=text(PENDING_OPEN),
        ),
    )

    id: str = Field(primary_key=True)
    kind: str = Field(default="grant")  # grant | provision | retry | access (contracts.approvals.RequestKind)
    worker_id: str | None = Field(default=None, index=True)  # None: a retry of a whole target
    target: str | None = Field(default=None, index=True)  # None: a provision-now request
    key: str
    account: bool = False
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    policy: str
    rule: str
    reason_required: bool = False
    requested_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    state: str = Field(index=True)  # pending | approved | denied | expired | void
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    ended_at: datetime | None = None
    requested_by: str | None = None  # who asked (an agent's token, a person); None: a policy's grant
    request_reason: str | None = None
    access_for: float | None = None  # access: seconds it lasts once approved (expires_at then: when it ends)


class IdentityRow(SQLModel, table=True):
    """A record joined to a person (docs/identity.md): `person_id` is the anchor, the first record's
    worker id, under which the person's links are kept. Only records of people with more than one
    record have a row, and those a person kept apart by hand (`manual`)."""

    __tablename__ = "identity"

    worker_id: str = Field(primary_key=True)
    person_id: str = Field(index=True)
    why: str  # "same custom.national_id_hash", "linked by hand"
    manual: bool = False
    at: datetime = Field(default_factory=utcnow)
    # On the anchor's row: the person as last planned (a Worker's JSON), what its next change is told against.
    person: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class IdentityKey(SQLModel, table=True):
    """A record's normalized match values ("work_email=ada@example.com"): what a new record is
    looked up by."""

    __tablename__ = "identity_key"

    key: str = Field(primary_key=True)
    worker_id: str = Field(primary_key=True, index=True)
