"""The latest report of each kind (today: the reconciler's), for the API, the console and metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.db import Database, as_utc
from provisioner.engine.store.tables import ReportRow


class Reports:
    def __init__(self, db: Database):
        self.db = db

    def save(self, kind: str, body: dict[str, Any]) -> None:
        with self.db.session() as s:
            s.merge(ReportRow(kind=kind, at=utcnow(), body=body))

    def latest(self, kind: str) -> tuple[datetime, dict[str, Any]] | None:
        with self.db.session() as s:
            row = s.get(ReportRow, kind)
            return (as_utc(row.at), dict(row.body)) if row else None
