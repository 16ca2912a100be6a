"""Deferred actions, and the leases and job runs that let exactly one engine process run each
scheduled job per period."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from provisioner.engine.contracts.models import Action
from provisioner.engine.contracts.records import utcnow
from provisioner.engine.kit.process import owner_is_gone
from provisioner.engine.store.bulk import where_in
from provisioner.engine.store.db import Database, as_utc, insert_rows
from provisioner.engine.store.tables import Deferred, JobRun, Lease


class Schedule:
    def __init__(self, db: Database):
        self.db = db

    def deferred(self, worker_id: str | None = None) -> list[Deferred]:
        with self.db.session() as s:
            query = select(Deferred).order_by(col(Deferred.effective_at))
            if worker_id:
                query = query.where(Deferred.worker_id == worker_id)
            return list(s.exec(query).all())

    def claim_due(self, s: Session, now: datetime) -> list[Deferred]:
        """The deferred actions due at `now`, taken by this unit of work: deleted as they are read
        (DELETE … RETURNING), so an engine taking due work at the same moment (a second scheduler,
        `sync` beside `run`) waits for this unit and then finds them gone, on PostgreSQL as on
        SQLite. A plain read let both fire them, and let the second judge them again after the
        first had spent the source's approval (and halt it). What this unit does not fire goes back
        (`put_back`)."""
        due = col(Deferred.effective_at) <= as_utc(now)
        # Looked for first: with nothing due (most ticks) no write lock is taken.
        if s.exec(select(Deferred.id).where(due).limit(1)).first() is None:
            return []
        table = Deferred.__table__  # type: ignore[attr-defined]
        taken = s.connection().execute(table.delete().where(due).returning(*table.columns))
        return [Deferred(**row._mapping) for row in taken]

    def put_back(self, s: Session, rows: Iterable[Deferred]) -> None:
        """Claimed rows this unit did not fire (the SafetyGate held them): they fall due again, as
        they were."""
        insert_rows(s, Deferred, [row.model_dump() for row in rows])

    def acquire_lease(self, name: str, owner: str, seconds: float, record: bool = True, renew: bool = True) -> bool:
        """Take or renew the lease unless another live owner holds it; the check and the write are
        one conditional UPDATE (or one INSERT), so two processes can never both win. `renew=False`:
        the holder too waits for its own lease to lapse (a job's lease is its period: a second firing
        in one period, from a job store another process just rewrote, must not run again).

        A holder that is provably gone (a crashed process on this host) is replaced at once; the
        UPDATE names it, so only one taker wins even then. Other holders expire with the TTL."""
        now = utcnow()
        expires = now + timedelta(seconds=seconds)
        with self.db.session() as s:
            holder = s.exec(select(Lease.owner).where(col(Lease.name) == name)).first()
            replaceable = col(Lease.expires_at) < now
            if renew:
                replaceable |= col(Lease.owner) == owner
            if holder and holder != owner and owner_is_gone(holder):
                replaceable |= col(Lease.owner) == holder
            taken = s.exec(
                update(Lease).where(col(Lease.name) == name, replaceable).values(owner=owner, expires_at=expires)
            ).rowcount
            if taken:
                if record:
                    s.add(JobRun(job=name, owner=owner, started_at=now))
                return True
        try:
            with self.db.session() as s:
                s.add(Lease(name=name, owner=owner, expires_at=expires))
                if record:
                    s.add(JobRun(job=name, owner=owner, started_at=now))
            return True
        except IntegrityError:  # someone else inserted it first
            return False

    def release_lease(self, name: str, owner: str) -> None:
        with self.db.session() as s:
            s.exec(delete(Lease).where(col(Lease.name) == name, col(Lease.owner) == owner))

    def job_runs(self, job: str | None = None) -> list[JobRun]:
        with self.db.session() as s:
            query = select(JobRun).order_by(col(JobRun.started_at))
            return list(s.exec(query.where(JobRun.job == job) if job else query).all())

    def replan(
        self, s: Session, deferred: Mapping[str, list[Action]], traces: Mapping[str, str | None] | None = None
    ) -> None:
        """Workers planned anew, each with the actions its plan deferred: they replace whatever was
        scheduled for that worker before. `traces`: the trace context of the change that planned
        each worker, which the firing's trace links to."""
        if not deferred:
            return
        # Nothing scheduled for anyone (a first sync, most stores between hires): nothing to replace.
        if s.exec(select(Deferred.id).limit(1)).first() is not None:
            table = Deferred.__table__  # type: ignore[attr-defined]
            where_in(s.connection(), "schedule.replan", table.delete().where, table.c.worker_id, sorted(deferred))
        rows = [
            {**_deferred_row(action), "traceparent": (traces or {}).get(worker_id)}
            for worker_id, actions in deferred.items()
            for action in actions
        ]
        if rows:
            insert_rows(s, Deferred, rows)


def _deferred_row(action: Action) -> dict[str, Any]:
    assert action.effective_at is not None
    return {
        "worker_id": action.worker_id,
        "target": action.target,
        "action": action.action.value,
        "effective_at": as_utc(action.effective_at),
        "policy": action.policy,
        "reason": action.reason,
        "created_at": utcnow(),
    }
