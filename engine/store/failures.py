"""Durable retry state per worker × target: what failed, how often, when it is tried again, and
the dead letters a person has to look at. The store is the truth; the Kafka dead-letter topic is
only a copy for consumers of a real cluster."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from provisioner.engine.config import RetryConfig
from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.records import EventOutcome, Failure, LinkKey, TargetFailure, utcnow
from provisioner.engine.contracts.tracecontext import trace_id_of
from provisioner.engine.kit import tracing
from provisioner.engine.kit.words import plural
from provisioner.engine.store.db import Database, as_utc, chunks, columns, insert_rows
from provisioner.engine.store.outbox import enqueue
from provisioner.engine.store.tables import FailureRow, LogRow

RetryEvents = Callable[[list[str]], list[WorkerEvent]]  # worker ids → their re-planning events
_ERROR_CHARS = 2000


class Failures:
    def __init__(self, db: Database, retry: RetryConfig | None = None):
        self.db = db
        self.retry = retry or RetryConfig()

    def all(self, target: str | None = None, worker_id: str | None = None) -> list[Failure]:
        with self.db.session() as s:
            query = select(FailureRow).order_by(col(FailureRow.target), col(FailureRow.worker_id))
            if target:
                query = query.where(FailureRow.target == target)
            if worker_id:
                query = query.where(FailureRow.worker_id == worker_id)
            return [_record(row) for row in s.exec(query).all()]

    def record(self, s: Session, outcomes: list[EventOutcome]) -> None:
        """Inside the transaction that records a batch's outcomes: each failure schedules its next
        try or becomes a dead letter, each target an event settled clears what failed there, and
        every attempt leaves a log row with its number."""
        touched = [o for o in outcomes if o.event is not None and (o.failures or o.settled)]
        if not touched:
            return
        if not any(o.failures for o in touched) and _none_pending(s):
            return  # nothing failed, nothing to heal: a first sync, or a store with no failures
        now = utcnow()
        workers = sorted({o.event.subject for o in touched if o.event is not None})
        current = self._load(s, workers)
        if not current and not any(o.failures for o in touched):
            return  # the common case: clean outcomes for workers with nothing pending
        log: list[dict[str, Any]] = []
        for outcome in touched:
            assert outcome.event is not None
            worker_id = outcome.event.subject
            for target in outcome.settled:
                healed = current.pop((worker_id, target), None)
                if healed is not None:
                    log.append(_log(outcome, healed, "success", _healed(healed["attempts"])))
            for failure in outcome.failures:
                row = self._next(current.get((worker_id, failure.target)), worker_id, failure, now)
                row["traceparent"] = row["traceparent"] or outcome.event.traceparent  # the first failure's
                current[(worker_id, failure.target)] = row
                log.append(_log(outcome, row, row["state"], self._said(row)))
        for chunk in chunks(workers):  # these workers' rows are all in `current`: rewritten as a whole
            s.exec(delete(FailureRow).where(col(FailureRow.worker_id).in_(chunk)))
        if current:
            insert_rows(s, FailureRow, [columns(FailureRow, row) for row in current.values()])
        if log:
            insert_rows(s, LogRow, log)

    def _load(self, s: Session, worker_ids: list[str]) -> dict[LinkKey, dict[str, Any]]:
        found: dict[LinkKey, dict[str, Any]] = {}
        for chunk in chunks(worker_ids):
            for row in s.exec(select(FailureRow).where(col(FailureRow.worker_id).in_(chunk))).all():
                found[(row.worker_id, row.target)] = row.model_dump()
        return found

    def _next(
        self, row: dict[str, Any] | None, worker_id: str, failure: TargetFailure, now: datetime
    ) -> dict[str, Any]:
        error = failure.error[:_ERROR_CHARS]
        attempts = (row["attempts"] if row else 0) + 1
        alive = failure.transient and attempts < self.retry.attempts
        delay = self.retry.delay(attempts, random.random())
        return {
            "worker_id": worker_id,
            "target": failure.target,
            "action": failure.action,
            "state": "retrying" if alive else "dead",
            "attempts": attempts,
            "next_at": now + timedelta(seconds=delay) if alive else None,
            "first_error": row["first_error"] if row else error,
            "last_error": error,
            "first_at": row["first_at"] if row else now,
            "last_at": now,
            "traceparent": row.get("traceparent") if row else None,
        }

    def _said(self, row: dict[str, Any]) -> str:
        attempt = f"attempt {row['attempts']} of {self.retry.attempts} failed"
        if row["state"] == "retrying":
            return f"{attempt}; next try at {row['next_at']:%H:%M:%S} UTC"
        return f"{attempt}; dead letter until: provisioner retry --worker {row['worker_id']}"

    def take(
        self,
        make_events: RetryEvents,
        *,
        now: datetime | None = None,
        worker_id: str | None = None,
        target: str | None = None,
        everything: bool = False,
    ) -> list[WorkerEvent]:
        """Failures due now (or those a person picked: a worker, a target, all of them, dead ones
        included) become re-planning events in the outbox, in one transaction; they stay listed,
        marked as on their way (no next time), until their outcome is recorded."""
        picked = everything or worker_id is not None or target is not None
        with self.db.session() as s:
            query = select(FailureRow)
            if not picked:
                query = query.where(FailureRow.state == "retrying", col(FailureRow.next_at) <= as_utc(now or utcnow()))
            if worker_id:
                query = query.where(FailureRow.worker_id == worker_id)
            if target:
                query = query.where(FailureRow.target == target)
            rows = list(s.exec(query).all())
            if not rows:
                return []
            for row in rows:
                if row.state == "dead":  # a person asked again: a fresh count of attempts
                    row.state, row.attempts = "retrying", 0
                row.next_at = None
                s.add(row)
            # A retry's time is when the first attempt failed: the removal of access it makes is
            # timed (provisioner_revocation_seconds) from then, not from the retry.
            first: dict[str, datetime] = {}
            origins: dict[str, list[str | None]] = {}
            for row in rows:
                first[row.worker_id] = min(first.get(row.worker_id, as_utc(row.first_at)), as_utc(row.first_at))
                origins.setdefault(row.worker_id, []).append(row.traceparent)
            events = [
                e.model_copy(update={"time": first.get(e.subject, e.time), "traceparent": _retry_trace(e, origins)})
                for e in make_events(sorted({row.worker_id for row in rows}))
            ]
            enqueue(s, events)
            return events

    def next_due(self) -> datetime | None:
        """When the earliest scheduled retry falls due (None when nothing waits on a time)."""
        with self.db.session() as s:
            query = select(FailureRow.next_at).where(col(FailureRow.next_at).is_not(None))
            first = s.exec(query.order_by(col(FailureRow.next_at)).limit(1)).first()
        return as_utc(first) if first else None


def _none_pending(s: Session) -> bool:
    # One row read, not one per worker: settled outcomes heal nothing where nothing failed.
    return s.exec(select(FailureRow.worker_id).limit(1)).first() is None


def _retry_trace(event: WorkerEvent, origins: dict[str, list[str | None]]) -> str | None:
    return tracing.new_trace("retry", {"provisioner.worker_id": event.subject}, origins.get(event.subject, []))


def _healed(attempts: int) -> str:
    # A dead letter a person retries starts a fresh count (take): its success follows no failed
    # attempt of this count, and saying "after 0 failed attempts" would contradict `failures`.
    if attempts == 0:
        return "applied when a person retried the dead letter"
    return f"applied after {plural(attempts, 'failed attempt')}"


def _record(row: FailureRow) -> Failure:
    return Failure.model_validate(
        {
            **row.model_dump(),
            "next_at": as_utc(row.next_at) if row.next_at else None,
            "first_at": as_utc(row.first_at),
            "last_at": as_utc(row.last_at),
        }
    )


def _log(outcome: EventOutcome, row: dict[str, Any], result: str, reason: str) -> dict[str, Any]:
    assert outcome.event is not None
    return {
        "time": utcnow(),
        "event_id": outcome.event_id,
        "worker_id": outcome.event.subject,
        "target": row["target"],
        "action": "retry",
        "reason": reason,
        "attributes": {"attempt": row["attempts"] + (1 if result == "success" else 0), "action": row["action"]},
        "result": result,
        "error": row["last_error"] if result != "success" else None,
        "duration_ms": 0.0,
        "trace_id": trace_id_of(outcome.event.traceparent),
    }
