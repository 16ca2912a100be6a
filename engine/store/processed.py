"""Events whose outcome is recorded: the consumer's idempotency. An event id here is never applied
again, whichever engine (or earlier try) recorded it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.store.bulk import insert_new_rows, where_in
from provisioner.engine.store.db import Database
from provisioner.engine.store.tables import ProcessedEvent

_TABLE = ProcessedEvent.__table__  # type: ignore[attr-defined]


class Processed:
    def __init__(self, db: Database):
        self.db = db

    def among(self, event_ids: list[str]) -> set[str]:
        """Those of these event ids whose outcome is recorded."""
        column = _TABLE.c.event_id
        with self.db.session() as s:
            rows = where_in(s.connection(), "processed.among", select(column).where, column, event_ids)
        return {row[0] for row in rows}

    def insert_new(self, s: Session, outcomes: list[EventOutcome], now: datetime) -> set[str]:
        """Mark these outcomes' events processed (ON CONFLICT DO NOTHING); returns the ids this call
        inserted: the others were recorded before, and their effects are not written again."""
        rows = {o.event_id: {"event_id": o.event_id, "outcome": o.status, "processed_at": now} for o in outcomes}
        return insert_new_rows(s.connection(), _TABLE, list(rows.values()), "event_id")
