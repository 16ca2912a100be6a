"""Console sessions, server-side: a signed cookie is honoured only while its id is here."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, delete, select

from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.db import Database, as_utc
from provisioner.engine.store.tables import ConsoleSession


class Sessions:
    def __init__(self, db: Database):
        self.db = db

    def start(self, session_id: str, address: str, lifetime: timedelta) -> None:
        with self.db.session() as s:
            s.exec(delete(ConsoleSession).where(col(ConsoleSession.issued_at) < utcnow() - lifetime))
            s.add(ConsoleSession(id=session_id, address=address[:100]))

    def valid(self, session_id: str) -> bool:
        with self.db.session() as s:
            return s.get(ConsoleSession, session_id) is not None

    def list(self) -> list[tuple[str, datetime, str]]:
        """(id, issued at, address), newest first."""
        with self.db.session() as s:
            rows = s.exec(select(ConsoleSession).order_by(col(ConsoleSession.issued_at).desc())).all()
            return [(r.id, as_utc(r.issued_at), r.address) for r in rows]

    def revoke(self, prefix: str) -> int:
        """End the sessions whose id starts with `prefix` (all of them for "*"); how many ended."""
        with self.db.session() as s:
            query = delete(ConsoleSession)
            if prefix != "*":
                query = query.where(col(ConsoleSession.id).startswith(prefix, autoescape=True))
            return int(s.exec(query).rowcount or 0)
