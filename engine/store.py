"""The state store: snapshots, cursors, outbox, links, processed events, provisioning log.

SQLModel over any SQLAlchemy URL: SQLite by default, PostgreSQL unchanged for scale-out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, insert, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, create_engine, delete, select

from engine.events import WorkerEvent
from engine.tables import (  # noqa: F401 - re-exported: the store is where callers find them
    Approval, Cursor, Deferred, Handover, JobRun, Lease, Link, LogEntry, OutboxEvent, ProcessedEvent, Snapshot, SourceState,
    WebhookNotice, utcnow,
)
from engine.models import Action, Worker

APPROVAL_LIFETIME = timedelta(days=1)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the relay read while the consumer writes; NORMAL sync is durable across app crashes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    if parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    return create_engine(url, pool_pre_ping=True)


class Store:
    """Typed access to the tables; every multi-row change is one transaction."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        SQLModel.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session
            session.commit()

    # snapshots and cursors
    def snapshots(self, source: str) -> dict[str, tuple[str, Worker]]:
        with self.session() as s:
            rows = s.exec(select(Snapshot).where(Snapshot.source == source)).all()
        return {r.worker_id: (r.content_hash, Worker.model_validate(r.worker)) for r in rows}

    def snapshot_of(self, worker_id: str) -> Worker | None:
        with self.session() as s:
            row = s.exec(select(Snapshot).where(Snapshot.worker_id == worker_id)).first()
        return Worker.model_validate(row.worker) if row else None

    def handovers(self) -> dict[str, str]:
        """Pre-hire worker id -> the worker that took its accounts over."""
        with self.session() as s:
            return {h.worker_id: h.successor for h in s.exec(select(Handover)).all()}

    def prehires_elsewhere(self, source: str, handed_over: Iterable[str]) -> list[Worker]:
        """Pending workers of other sources, but for those `handed_over`: who a new hire here may be."""
        taken = set(handed_over)
        with self.session() as s:
            rows = s.exec(select(Snapshot).where(Snapshot.source != source)).all()
        # Filter on the stored JSON first: only the few pre-hires are worth building a Worker for.
        return [Worker.model_validate(r.worker) for r in rows
                if r.worker.get("status") == "pending" and r.worker_id not in taken]

    def cursor(self, source: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(Cursor, source)
        return dict(row.value) if row else {}

    def commit_poll(
        self,
        source: str,
        events: list[WorkerEvent],
        upserts: Iterable[Worker],
        removals: Iterable[str],
        cursor: dict[str, Any],
        quarantined: Iterable[LogEntry] = (),
        seen: int | None = None,
        handovers: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        """Events, new snapshot, cursor and hand-overs land together or not at all."""
        now = utcnow()
        with self.session() as s:
            for old, new, key in handovers:
                # The successor keeps any link of its own; the pre-hire's others move to it.
                own = s.exec(select(Link.target).where(Link.worker_id == new)).all()
                s.exec(update(Link).where(col(Link.worker_id) == old, col(Link.target).not_in(own))
                       .values(worker_id=new))
                s.add(Handover(worker_id=old, successor=new, key=key))
            # Core executemany inserts: ORM objects cost more than the SQL itself on a 10k-worker poll.
            _enqueue(s, events)
            state = s.get(SourceState, source) or SourceState(source=source)
            state.last_poll_at = now
            state.workers = seen if seen is not None else state.workers
            s.add(state)
            rows = [{"source": source, "worker_id": w.id, "content_hash": w.content_hash(),
                     "worker": w.model_dump(mode="json"), "updated_at": now} for w in upserts]
            # delete + insert instead of merge: merge costs one SELECT per row
            for chunk in _chunks([r["worker_id"] for r in rows] + list(removals)):
                s.exec(delete(Snapshot).where(Snapshot.source == source, col(Snapshot.worker_id).in_(chunk)))
            if rows:
                s.execute(insert(Snapshot), rows)
            s.merge(Cursor(source=source, value=cursor, updated_at=now))
            s.add_all(quarantined)

    # outbox
    def unpublished(self, limit: int) -> list[OutboxEvent]:
        with self.session() as s:
            query = (select(OutboxEvent).where(col(OutboxEvent.published_at).is_(None),
                                               col(OutboxEvent.confirmed_at).is_(None))
                     .order_by(col(OutboxEvent.seq)).limit(limit))
            return list(s.exec(query).all())

    def mark_published(self, seqs: list[int]) -> None:
        with self.session() as s:
            s.exec(update(OutboxEvent).where(col(OutboxEvent.seq).in_(seqs)).values(published_at=utcnow()))

    def requeue_unconfirmed(self) -> int:
        """After a restart, whatever was published but never applied goes out again."""
        with self.session() as s:
            result = s.exec(update(OutboxEvent).where(col(OutboxEvent.confirmed_at).is_(None),
                                                      col(OutboxEvent.published_at).is_not(None))
                            .values(published_at=None))
            return result.rowcount or 0

    def pending_count(self) -> int:
        with self.session() as s:
            return s.exec(select(func.count()).select_from(OutboxEvent)
                          .where(col(OutboxEvent.confirmed_at).is_(None))).one()

    # consumer side
    def processed(self, event_ids: list[str]) -> set[str]:
        if not event_ids:
            return set()
        with self.session() as s:
            rows = s.exec(select(ProcessedEvent.event_id).where(col(ProcessedEvent.event_id).in_(event_ids)))
            return set(rows.all())

    def links_for(self, worker_ids: Iterable[str]) -> dict[tuple[str, str], Link]:
        ids = list(worker_ids)
        with self.session() as s:
            rows = s.exec(select(Link).where(col(Link.worker_id).in_(ids))).all() if ids else []
        return {(r.worker_id, r.target): r for r in rows}

    def links(self, target: str | None = None) -> list[Link]:
        with self.session() as s:
            query = select(Link) if target is None else select(Link).where(Link.target == target)
            return list(s.exec(query).all())

    def record_outcomes(self, outcomes: list[EventOutcome]) -> None:
        """Links, log rows, processed ids and outbox confirmations of a batch, in one transaction."""
        if not outcomes:
            return
        now = utcnow()
        # The last state of each (worker, target) wins; written as delete + insert, not per-row merge.
        final: dict[tuple[str, str], Link | None] = {}
        for outcome in outcomes:
            for link in outcome.links:
                final[(link.worker_id, link.target)] = link
            for key in outcome.unlinked:
                final[key] = None
        with self.session() as s:
            for target in {t for _, t in final}:
                for chunk in _chunks([w for w, t in final if t == target]):
                    s.exec(delete(Link).where(Link.target == target, col(Link.worker_id).in_(chunk)))
            links = [_columns(link) for link in final.values() if link is not None]
            if links:
                s.execute(insert(Link), links)
            entries = [_columns(entry) for outcome in outcomes for entry in outcome.log]
            if entries:
                s.execute(insert(LogEntry), entries)
            # Each applied event re-plans its worker: what was scheduled before is replaced.
            rescheduled = [o for o in outcomes if o.deferred is not None]
            for chunk in _chunks(sorted({o.event.subject for o in rescheduled if o.event is not None})):
                s.exec(delete(Deferred).where(col(Deferred.worker_id).in_(chunk)))
            deferred = [_deferred_row(a) for o in rescheduled for a in o.deferred or []]
            if deferred:
                s.execute(insert(Deferred), deferred)
            ids = [o.event_id for o in outcomes]
            s.execute(insert(ProcessedEvent), [{"event_id": o.event_id, "outcome": o.status, "processed_at": now}
                                               for o in outcomes])
            for chunk in _chunks(ids):
                s.exec(update(OutboxEvent).where(col(OutboxEvent.event_id).in_(chunk)).values(confirmed_at=now))

    def reconcile_links(self, upserts: list[Link], removals: list[tuple[str, str]], events: list[WorkerEvent]) -> None:
        """The reconciler's view of reality replaces stored links, and its events go out, together."""
        with self.session() as s:
            for worker_id, target in [*removals, *((l.worker_id, l.target) for l in upserts)]:
                s.exec(delete(Link).where(Link.worker_id == worker_id, Link.target == target))
            if upserts:
                s.execute(insert(Link), [_columns(link) for link in upserts])
            _enqueue(s, events)

    # deferred actions and the scheduler
    def deferred(self, worker_id: str | None = None) -> list[Deferred]:
        with self.session() as s:
            query = select(Deferred).order_by(col(Deferred.effective_at))
            if worker_id:
                query = query.where(Deferred.worker_id == worker_id)
            return list(s.exec(query).all())

    def take_due(self, now: datetime, make_events: Any) -> list[WorkerEvent]:
        """Due deferred actions become events for their workers, in one transaction.

        `make_events(rows)` turns the due rows into WorkerEvents (re-planning from the snapshot), so a
        change that arrived in between always wins over what was planned before it, and names the
        workers held back (the safety guard): their rows stay, to fall due again after a resume.
        """
        with self.session() as s:
            rows = list(s.exec(select(Deferred).where(col(Deferred.effective_at) <= as_utc(now))).all())
            if not rows:
                return []
            events, held = make_events(rows)
            done = [r.id for r in rows if r.worker_id not in held]
            for chunk in _chunks(done):
                s.exec(delete(Deferred).where(col(Deferred.id).in_(chunk)))
            _enqueue(s, events)
            return events

    # leases: one engine process runs each scheduled job
    def acquire_lease(self, name: str, owner: str, seconds: float, record: bool = True) -> bool:
        """Take or renew the lease unless another live owner holds it; the check and the write are
        one conditional UPDATE (or one INSERT), so two processes can never both win."""
        now = utcnow()
        expires = now + timedelta(seconds=seconds)
        with self.session() as s:
            taken = s.exec(update(Lease).where(Lease.name == name, (Lease.owner == owner) | (Lease.expires_at < now))
                           .values(owner=owner, expires_at=expires)).rowcount
            if taken:
                if record:
                    s.add(JobRun(job=name, owner=owner, started_at=now))
                return True
        try:
            with self.session() as s:
                s.add(Lease(name=name, owner=owner, expires_at=expires))
                if record:
                    s.add(JobRun(job=name, owner=owner, started_at=now))
            return True
        except IntegrityError:  # someone else inserted it first
            return False

    def first_notice(self, key: str, keep: timedelta = timedelta(days=1)) -> bool:
        """True the first time any process sees this webhook notice; notices older than `keep`
        (far beyond any signed timestamp's tolerance) are forgotten."""
        now = utcnow()
        try:
            with self.session() as s:
                s.exec(delete(WebhookNotice).where(col(WebhookNotice.at) < now - keep))
                s.add(WebhookNotice(key=key, at=now))
            return True
        except IntegrityError:
            return False

    def release_lease(self, name: str, owner: str) -> None:
        with self.session() as s:
            s.exec(delete(Lease).where(Lease.name == name, Lease.owner == owner))

    def job_runs(self, job: str | None = None) -> list[JobRun]:
        with self.session() as s:
            query = select(JobRun).order_by(col(JobRun.started_at))
            return list(s.exec(query.where(JobRun.job == job) if job else query).all())

    # sources: halt / resume and last poll
    def source_states(self) -> dict[str, SourceState]:
        with self.session() as s:
            return {r.source: r for r in s.exec(select(SourceState)).all()}

    def halt(self, source: str, reason: str) -> None:
        with self.session() as s:
            state = s.get(SourceState, source) or SourceState(source=source)
            if not state.halted:
                state.halted, state.reason, state.halted_at = True, reason, utcnow()
            s.add(state)

    def resume(self, source: str) -> bool:
        """Lift a halt and approve, once, the deprovisions it held (they come again next check)."""
        with self.session() as s:
            state = s.get(SourceState, source)
            if state is None or not state.halted:
                return False
            state.halted, state.reason, state.halted_at = False, None, None
            s.add(state)
            s.merge(Approval(source=source, at=utcnow()))
            return True

    def approved_sources(self, within: timedelta = APPROVAL_LIFETIME) -> set[str]:
        with self.session() as s:
            return set(s.exec(select(Approval.source).where(col(Approval.at) >= utcnow() - within)).all())

    def consume_approval(self, source: str, within: timedelta = APPROVAL_LIFETIME) -> bool:
        """True (once) if a person resumed this source within `within`; an approval is spent by the
        first check it lets through, and a stale one never counts."""
        with self.session() as s:
            return bool(s.exec(delete(Approval).where(col(Approval.source) == source,
                                                       col(Approval.at) >= utcnow() - within)).rowcount)

    def append_log(self, entries: list[LogEntry]) -> None:
        with self.session() as s:
            s.add_all(entries)

    def log(self, worker_id: str | None = None, limit: int = 100) -> list[LogEntry]:
        with self.session() as s:
            query = select(LogEntry).order_by(col(LogEntry.id).desc()).limit(limit)
            if worker_id:
                query = query.where(LogEntry.worker_id == worker_id)
            return list(reversed(s.exec(query).all()))


def by_worker(links: dict[tuple[str, str], Link]) -> dict[str, dict[str, Link]]:
    """`links_for`'s answer regrouped: worker id → target → link."""
    out: dict[str, dict[str, Link]] = {}
    for (worker_id, target), link in links.items():
        out.setdefault(worker_id, {})[target] = link
    return out


def as_utc(moment: datetime) -> datetime:
    """Stored times are UTC, so that SQLite and PostgreSQL compare them alike."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _deferred_row(action: Action) -> dict[str, Any]:
    assert action.effective_at is not None
    return {"worker_id": action.worker_id, "target": action.target, "action": action.action.value,
            "effective_at": as_utc(action.effective_at), "policy": action.policy, "reason": action.reason,
            "created_at": utcnow()}


def _enqueue(s: Session, events: list[WorkerEvent]) -> None:
    """Into the outbox, skipping ids already there: a re-poll after a crash re-derives the same ids."""
    if not events:
        return
    existing: set[str] = set()
    for chunk in _chunks([e.id for e in events]):
        existing.update(s.exec(select(OutboxEvent.event_id).where(col(OutboxEvent.event_id).in_(chunk))).all())
    now = utcnow()
    rows = [{"event_id": ev.id, "worker_id": ev.subject, "payload": ev.model_dump(mode="json"), "created_at": now}
            for ev in events if ev.id not in existing]
    if rows:
        s.execute(insert(OutboxEvent), rows)


def _columns(row: SQLModel) -> dict[str, Any]:
    values = {c.name: getattr(row, c.name, None) for c in row.__table__.columns}  # type: ignore[attr-defined]
    return {k: v for k, v in values.items() if v is not None or k not in _GENERATED}


_GENERATED = {"id", "seq"}  # autoincrement keys the database assigns


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class EventOutcome:
    """What applying one event changed, to be recorded atomically with the rest of its batch."""

    def __init__(self, event_id: str, event: WorkerEvent | None = None):
        self.event_id = event_id
        self.event = event
        self.links: list[Link] = []
        self.unlinked: list[tuple[str, str]] = []
        self.log: list[LogEntry] = []
        self.deferred: list[Action] | None = None  # None: the plan did not run; [] clears the schedule
        self.failed = False

    @property
    def status(self) -> str:
        return "failure" if self.failed else "success"
