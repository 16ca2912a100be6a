"""Events whose outcome is recorded: the consumer's idempotency. An event id here is never applied
again, whichever engine (or earlier try) recorded it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.store.db import Database, chunks, insert_new
from provisioner.engine.store.tables import ProcessedEvent


class Processed:
    def __init__(self, db: Database):
        self.db = db

    def among(self, event_ids: list[str]) -> set[str]:
        """Those of these event ids whose outcome is recorded."""
        done: set[str] = set()
        with self.db.session() as s:
            for chunk in chunks(event_ids):
                done.update(s.exec(select(ProcessedEvent.event_id).where(col(ProcessedEvent.event_id).in_(chunk))))
        return done

    def insert_new(self, s: Session, outcomes: list[EventOutcome], now: datetime) -> set[str]:
        """Mark these outcomes' events processed (ON CONFLICT DO NOTHING); returns the ids this call
        inserted: the others were recorded before, and their effects are not written again."""
        rows = {o.event_id: {"event_id": o.event_id, "outcome": o.status, "processed_at": now} for o in outcomes}
        return insert_new(s, ProcessedEvent, list(rows.values()), "event_id")
