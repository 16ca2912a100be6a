"""Read-only queries for the operations surface: find people, filter the log, count links."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_
from sqlmodel import col, select

from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import LogEntry
from provisioner.engine.store.db import Database
from provisioner.engine.store.tables import LinkRow, LogRow, Snapshot

SEARCHED = ("id", "first_name", "last_name", "preferred_name", "display_name", "work_email", "personal_email")


class Search:
    def __init__(self, db: Database):
        self.db = db

    def workers(self, q: str, limit: int = 50, page: int = 500, fields: Collection[str] | None = None) -> list[Worker]:
        """Workers whose id, name or email contains `q` (case-insensitive), by id. The database
        narrows on the whole JSON text; the exact fields are checked here, so a title never matches.
        JSON text escapes non-ASCII letters, so for a query such as 'núñez' only this check counts.
        `fields`: the Worker fields the asker sees (None: all): a match on a hidden one would tell it."""
        searched = [f for f in SEARCHED if fields is None or f in fields]
        needle = q.strip().lower()
        query = select(Snapshot).order_by(col(Snapshot.worker_id))
        if needle.isascii() and needle:
            like = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(
                or_(
                    func.lower(col(Snapshot.worker_id)).like(like, escape="\\"),
                    func.lower(cast(col(Snapshot.worker), String)).like(like, escape="\\"),
                )
            )
        found: list[Worker] = []
        offset = 0
        while len(found) < limit:
            with self.db.session() as s:
                rows = s.exec(query.offset(offset).limit(page)).all()
            for row in rows:
                worker = Worker.model_validate(row.worker)
                if not needle or any(needle in str(getattr(worker, f) or "").lower() for f in searched):
                    found.append(worker)
            if len(rows) < page:
                break
            offset += page
        return found[:limit]

    def log(
        self,
        worker: str | None = None,
        target: str | Sequence[str] | None = None,
        result: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[LogEntry]:
        """Newest last, like `provisioner log`; `target` one name or several."""
        with self.db.session() as s:
            query = select(LogRow).order_by(col(LogRow.id).desc()).limit(limit)
            rows = s.exec(_log_filter(query, worker, target, result, since)).all()
        return [LogEntry.model_validate(r, from_attributes=True) for r in reversed(rows)]

    def log_count(
        self,
        worker: str | None = None,
        target: str | Sequence[str] | None = None,
        result: str | None = None,
        since: datetime | None = None,
    ) -> int:
        """How many entries the same filters match, for "showing 50 of 65"."""
        with self.db.session() as s:
            query = select(func.count()).select_from(LogRow)
            return int(s.exec(_log_filter(query, worker, target, result, since)).one())

    def accounts_by_target(self) -> dict[str, dict[str, int]]:
        """target → {"active": n, "disabled": n} of linked accounts."""
        with self.db.session() as s:
            query = select(col(LinkRow.target), col(LinkRow.active), func.count())
            rows = s.exec(query.group_by(col(LinkRow.target), col(LinkRow.active)))
            out: dict[str, dict[str, int]] = {}
            for target, active, count in rows.all():
                out.setdefault(target, {"active": 0, "disabled": 0})["active" if active else "disabled"] += count
            return out

    def last_results(self) -> dict[str, dict[str, Any]]:
        """target → its most recent log entry's time, result and error: how the target answered lately."""
        with self.db.session() as s:
            latest = select(func.max(col(LogRow.id))).where(col(LogRow.target).is_not(None)).group_by(LogRow.target)
            rows = s.exec(select(LogRow).where(col(LogRow.id).in_(latest))).all()
        return {r.target: {"time": r.time, "result": r.result, "error": r.error} for r in rows if r.target}


def _log_filter(
    query: Any, worker: str | None, target: str | Sequence[str] | None, result: str | None, since: datetime | None
) -> Any:
    if worker:
        query = query.where(col(LogRow.worker_id) == worker)
    if isinstance(target, str):
        query = query.where(col(LogRow.target) == target)
    elif target:
        query = query.where(col(LogRow.target).in_(list(target)))
    if result:
        query = query.where(col(LogRow.result) == result)
    if since:
        query = query.where(col(LogRow.time) >= since)
    return query
