"""Deferred actions, and the leases and job runs that let exactly one engine process run each
scheduled job per period."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from provisioner.engine.contracts.records import utcnow
from provisioner.engine.kit.process import owner_is_gone
from provisioner.engine.store.db import Database, as_utc, chunks
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

    def due(self, s: Session, now: datetime) -> list[Deferred]:
        """The deferred actions due at `now`, read in the unit of work that will take them."""
        return list(s.exec(select(Deferred).where(col(Deferred.effective_at) <= as_utc(now))).all())

    def forget(self, s: Session, ids: Iterable[int]) -> None:
        """Deferred actions that became events in this unit of work."""
        for chunk in chunks(list(ids)):
            s.exec(delete(Deferred).where(col(Deferred.id).in_(chunk)))

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
