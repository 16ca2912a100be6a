"""Snapshots (the last state of each worker per source), cursors, and ATS→HRIS hand-overs: what a
poll diffs against and commits, with its events, in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import Quarantined
from provisioner.engine.contracts.records import LogEntry, utcnow
from provisioner.engine.store.db import Database, RawJSON, chunks, columns, insert_rows
from provisioner.engine.store.outbox import enqueue
from provisioner.engine.store.quarantine import replace_quarantine
from provisioner.engine.store.tables import Cursor, Handover, LinkRow, LogRow, Snapshot, SourceState


class Snapshots:
    def __init__(self, db: Database):
        self.db = db

    def of_source(self, source: str) -> StoredSnapshots:
        with self.db.session() as s:
            rows = s.execute(select(Snapshot.worker_id, Snapshot.content_hash).where(Snapshot.source == source))
            hashes = {worker_id: digest for worker_id, digest in rows}
        return StoredSnapshots(self.db, source, hashes)

    def get(self, worker_id: str) -> Worker | None:
        with self.db.session() as s:
            row = s.exec(select(Snapshot).where(Snapshot.worker_id == worker_id)).first()
        return Worker.model_validate(row.worker) if row else None

    def handovers(self) -> dict[str, str]:
        """Pre-hire worker id -> the worker that took its accounts over."""
        with self.db.session() as s:
            return {h.worker_id: h.successor for h in s.exec(select(Handover)).all()}

    def prehires_elsewhere(self, source: str, handed_over: Iterable[str]) -> list[Worker]:
        """Pending workers of other sources, but for those `handed_over`: who a new hire here may be."""
        taken = set(handed_over)
        with self.db.session() as s:
            rows = s.exec(select(Snapshot).where(Snapshot.source != source)).all()
        # Filter on the stored JSON first: only the few pre-hires are worth building a Worker for.
        return [
            Worker.model_validate(r.worker)
            for r in rows
            if r.worker.get("status") == "pending" and r.worker_id not in taken
        ]

    def cursor(self, source: str) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.get(Cursor, source)
        return dict(row.value) if row else {}

    def commit_poll(
        self,
        source: str,
        events: list[WorkerEvent],
        upserts: Iterable[Worker],
        removals: Iterable[str],
        cursor: dict[str, Any],
        quarantined: Iterable[LogEntry] = (),
        seen: int | None = None,
        handovers: Iterable[tuple[str, str, str]] = (),
        held: Iterable[Quarantined] = (),
        complete: bool = True,
        read_ids: Iterable[str] = (),
    ) -> None:
        """Events, new snapshot, cursor, hand-overs and the source's quarantine land together or not
        at all; a poll that commits also clears the source's `failing` state."""
        now = utcnow()
        with self.db.session() as s:
            for old, new, key in handovers:
                # The successor keeps any link of its own; the pre-hire's others move to it.
                own = s.exec(select(LinkRow.target).where(LinkRow.worker_id == new)).all()
                s.exec(
                    update(LinkRow)
                    .where(col(LinkRow.worker_id) == old, col(LinkRow.target).not_in(own))
                    .values(worker_id=new)
                )
                s.add(Handover(worker_id=old, successor=new, key=key))
            # Core executemany inserts: ORM objects cost more than the SQL itself on a 10k-worker poll.
            enqueue(s, events)
            state = s.get(SourceState, source) or SourceState(source=source)
            state.last_poll_at = now
            state.workers = seen if seen is not None else state.workers
            state.failing, state.failing_since = None, None
            s.add(state)
            replace_quarantine(s, source, held, complete, read_ids)
            upserts = list(upserts)
            # delete + insert instead of merge: merge costs one SELECT per row
            for chunk in chunks([w.id for w in upserts] + list(removals)):
                s.exec(delete(Snapshot).where(col(Snapshot.source) == source, col(Snapshot.worker_id).in_(chunk)))
            rows = (
                {
                    "source": source,
                    "worker_id": w.id,
                    "content_hash": w.content_hash(),
                    "worker": RawJSON(w.model_dump_json()),
                    "updated_at": now,
                }
                for w in upserts
            )
            insert_rows(s, Snapshot, rows)
            s.merge(Cursor(source=source, value=cursor, updated_at=now))
            entries = [columns(LogRow, q.model_dump()) for q in quarantined]
            if entries:
                insert_rows(s, LogRow, entries)


class StoredSnapshots(Mapping[str, tuple[str, Worker]]):
    """A source's snapshots, (content hash, Worker) by worker id, that reads only the hashes up
    front: a poll of 100,000 people in which nothing changed compares hashes and never builds a
    Worker from storage. Workers are read on first use, in bulk after `preload`."""

    def __init__(self, db: Database, source: str, hashes: dict[str, str]):
        self.db = db
        self.source = source
        self.hashes = hashes
        self._workers: dict[str, Worker] = {}

    def preload(self, worker_ids: Iterable[str]) -> None:
        wanted = [w for w in worker_ids if w in self.hashes and w not in self._workers]
        for chunk in chunks(wanted):
            with self.db.session() as s:
                rows = s.execute(
                    select(Snapshot.worker_id, Snapshot.worker).where(
                        col(Snapshot.source) == self.source, col(Snapshot.worker_id).in_(chunk)
                    )
                )
                self._workers.update({worker_id: Worker.model_validate(data) for worker_id, data in rows})

    def __getitem__(self, worker_id: str) -> tuple[str, Worker]:
        digest = self.hashes[worker_id]
        if worker_id not in self._workers:
            self.preload([worker_id])
        return digest, self._workers[worker_id]

    def __contains__(self, worker_id: object) -> bool:
        return worker_id in self.hashes

    def __iter__(self) -> Iterator[str]:
        return iter(self.hashes)

    def __len__(self) -> int:
        return len(self.hashes)
