"""The running engines as the store knows them: one heartbeat row per process, so `status` and
every replica's API list the whole fleet, its partitions and its lag."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select

from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.db import Database, dialect_insert
from provisioner.engine.store.tables import EngineRow


class Engines:
    def __init__(self, db: Database):
        self.db = db

    def beat(self, engine_id: str, **state: Any) -> None:
        """Insert or refresh this engine's row (host, partitions, lag, in_flight, last_progress,
        recording_error)."""
        row = {"id": engine_id, **state, "seen_at": utcnow()}
        with self.db.session() as s:
            statement = dialect_insert(s, EngineRow).values(row)
            changed = {k: statement.excluded[k] for k in row if k != "id"}
            s.connection().execute(statement.on_conflict_do_update(index_elements=["id"], set_=changed))

    def gone(self, engine_id: str) -> None:
        with self.db.session() as s:
            s.exec(delete(EngineRow).where(col(EngineRow.id) == engine_id))

    def alive(self, within: float = 60.0) -> list[EngineRow]:
        """Engines heard from recently; older rows (a process killed with -9) are pruned."""
        cutoff = utcnow() - timedelta(seconds=within)
        with self.db.session() as s:
            s.exec(delete(EngineRow).where(col(EngineRow.seen_at) < cutoff - timedelta(hours=1)))
            return list(s.exec(select(EngineRow).where(col(EngineRow.seen_at) >= cutoff).order_by(col(EngineRow.id))))
