"""The outbox: events written in the same transaction as the change that caused them, published
by the relay, and deleted once applied, in the unit of work that records their outcome. It holds
what is in flight and nothing else: an event not in it is done, which is the consumer's
idempotency (no table of done ids grows with every event ever applied)."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import ColumnElement, Delete, Text, bindparam, cast, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.records import utcnow
from provisioner.engine.kit.process import owner_is_gone
from provisioner.engine.store.bulk import where_in
from provisioner.engine.store.db import Database, RawJSON, insert_rows
from provisioner.engine.store.tables import EventClaim, OutboxEvent


def enqueue(s: Session, events: list[WorkerEvent]) -> None:
    """Into the outbox, skipping ids already there: a re-poll after a crash re-derives the same ids."""
    now = utcnow()
    rows = (
        {"event_id": ev.id, "worker_id": ev.subject, "payload": RawJSON(ev.to_json()), "created_at": now}
        for ev in events
    )
    insert_rows(s, OutboxEvent, rows, skip_existing=True)


def applied_among(conn: Connection, event_ids: list[str]) -> set[str]:
    """Those of these events no longer in the outbox, read in the caller's transaction. Every event
    on the topic came from this outbox (the relay is its only publisher), so one not here is done."""
    column = OutboxEvent.__table__.c.event_id  # type: ignore[attr-defined]
    rows = where_in(conn, "outbox.in_flight", sa_select(column).where, column, event_ids)
    return set(event_ids) - {row[0] for row in rows}


class Unpublished(NamedTuple):
    seq: int
    event_id: str
    worker_id: str
    payload: str  # the event's JSON as stored: published as it is, never decoded and re-encoded


class Outbox:
    def __init__(self, db: Database):
        self.db = db

    def add(self, events: list[WorkerEvent]) -> None:
        """Events made by a person (provision now) rather than a poll; the relay publishes them."""
        with self.db.session() as s:
            enqueue(s, events)

    def enqueue(self, s: Session, events: list[WorkerEvent]) -> None:
        """Inside the caller's unit of work, with the change that caused them."""
        enqueue(s, events)

    def unpublished(self, limit: int) -> list[Unpublished]:
        with self.db.session() as s:
            query = (
                select(
                    OutboxEvent.seq,
                    OutboxEvent.event_id,
                    OutboxEvent.worker_id,
                    cast(OutboxEvent.payload, Text),  # the text, not a dict: the driver leaves it alone
                )
                .where(col(OutboxEvent.published_at).is_(None))
                .order_by(col(OutboxEvent.seq))
                .limit(limit)
            )
            return [Unpublished(*row) for row in s.execute(query)]

    def mark_published(self, seqs: list[int]) -> None:
        table = OutboxEvent.__table__  # type: ignore[attr-defined]
        mark = table.update().values(published_at=bindparam("at", type_=table.c.published_at.type))
        with self.db.session() as s:
            where_in(s.connection(), "outbox.published", mark.where, table.c.seq, seqs, {"at": utcnow()})

    def confirm(self, s: Session, event_ids: list[str]) -> set[str]:
        """These events are applied: deleted in the unit of work that records their outcome, which
        is what makes recording idempotent. Returns the ids this call deleted; an event another
        engine (or an earlier try whose answer was lost) recorded first is gone already, and its
        effects are not written again. On PostgreSQL a second engine deleting the same row waits for
        the first to commit and then finds nothing, as an insert into a table of done ids would."""
        table = OutboxEvent.__table__  # type: ignore[attr-defined]
        column = table.c.event_id

        def delete(is_in: ColumnElement[bool]) -> Delete:
            return table.delete().where(is_in).returning(column)

        # Sorted: two engines recording overlapping batches take the rows' locks in one order.
        rows = where_in(s.connection(), "outbox.confirm", delete, column, sorted(set(event_ids)))
        return {row[0] for row in rows}

    def applied(self, event_ids: list[str]) -> set[str]:
        """Those of these events that are no longer in flight: their outcome is recorded (here or by
        another engine), so they are never applied again."""
        with self.db.session() as s:
            return applied_among(s.connection(), event_ids)

    def requeue_unconfirmed(self) -> int:
        """After a restart, whatever was published but never applied goes out again, except what a
        live consumer has claimed (it records it; a claim that lapses is taken over by the consumer
        that holds the event next). A claim whose owner is provably gone (a crashed process on this
        host, such as the one whose embedded broker lost its events) does not count. The relay sends
        them in outbox order, oldest first."""
        live = col(EventClaim.expires_at) >= utcnow()
        with self.db.session() as s:
            owners = s.exec(select(EventClaim.owner).where(live).distinct()).all()
            if gone := [owner for owner in owners if owner_is_gone(owner)]:
                live &= col(EventClaim.owner).not_in(gone)
            claimed = select(EventClaim.event_id).where(live)
            result = s.exec(
                update(OutboxEvent)
                .where(col(OutboxEvent.published_at).is_not(None), col(OutboxEvent.event_id).not_in(claimed))
                .values(published_at=None)
            )
            return result.rowcount or 0

    def pending_count(self) -> int:
        """How many events are not applied yet: a scan of what is in flight (a million during a
        first sync), so for a display or a metric; `any_pending` answers whether there are any."""
        with self.db.session() as s:
            return s.exec(select(func.count()).select_from(OutboxEvent)).one()

    def any_pending(self) -> bool:
        """Whether any event is not applied yet: one row read, however many are in flight (a
        readiness probe's round trip to the store)."""
        with self.db.session() as s:
            return s.exec(select(OutboxEvent.seq).limit(1)).first() is not None
