"""Snapshots (the last state of each worker per source), cursors, and ATS→HRIS hand-overs: what a
poll diffs against, and the repository methods its commit is made of. Reads open their own session
unless given the caller's (`s`); writes happen only inside a caller's unit of work."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.bulk import batches
from provisioner.engine.store.db import Database, RawJSON, as_utc, chunks, insert_rows
from provisioner.engine.store.tables import Cursor, Departed, Handover, LinkRow, Snapshot


class Snapshots:
    def __init__(self, db: Database):
        self.db = db

    def of_source(
        self, source: str, s: Session | None = None, worker_ids: Iterable[str] | None = None
    ) -> StoredSnapshots:
        """The source's snapshots; with `worker_ids`, only those (the few a webhook named, not the
        whole source's)."""
        return StoredSnapshots(self.db, source, self._by_worker(source, "content_hash", s, worker_ids), s)

    def digests(self, source: str, s: Session | None = None) -> dict[str, str | None]:
        """Worker id -> the digest of the record it was last read from (None: not known): all a
        streamed poll holds of the stored side, about 150 bytes a worker."""
        return self._by_worker(source, "record_digest", s)

    def _by_worker(
        self, source: str, column: str, s: Session | None, worker_ids: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Worker id -> `column` of the source's snapshots (of `worker_ids` alone, when given), read
        as the driver gives the rows, a batch at a time: a million of them are never held twice."""
        table = Snapshot.__table__  # type: ignore[attr-defined]
        query = sa_select(table.c.worker_id, table.c[column]).where(table.c.source == source)
        queries = (
            [query]
            if worker_ids is None
            else [query.where(table.c.worker_id.in_(c)) for c in chunks(sorted(set(worker_ids)))]
        )
        found: dict[str, Any] = {}
        with self.db.session(s) as session:
            for one in queries:
                for rows in batches(session.connection(), one):
                    found.update(rows)
        return found

    def holders_of(self, source: str, emails: set[str], s: Session | None = None) -> Iterator[tuple[str, str]]:
        """(worker id, work email in lower case) of this source's snapshots whose work email is one
        of `emails` (lower case): one pass over the stored JSON."""
        email = func.lower(col(Snapshot.worker)["work_email"].as_string())
        query = select(Snapshot.worker_id, email).where(col(Snapshot.source) == source, email.is_not(None))
        with self.db.session(s) as session:
            for worker_id, address in session.execute(query.execution_options(yield_per=5000)):
                if address in emails:
                    yield worker_id, address

    def count(self, source: str, s: Session | None = None) -> int:
        """How many workers of this source the store knows: what the deprovision ratio is of."""
        with self.db.session(s) as session:
            query = select(func.count()).select_from(Snapshot).where(col(Snapshot.source) == source)
            return int(session.exec(query).one())

    def stored(self, worker_id: str, s: Session | None = None) -> tuple[str, Worker] | None:
        """One worker's snapshot, (its `state_key`, Worker), without reading the rest of its source."""
        with self.db.session(s) as session:
            row = session.exec(select(Snapshot).where(Snapshot.worker_id == worker_id)).first()
        return (state_key(row.content_hash, row.updated_at), Worker.model_validate(row.worker)) if row else None

    def get(self, worker_id: str, s: Session | None = None) -> Worker | None:
        found = self.stored(worker_id, s)
        return found[1] if found else None

    def of_workers(self, worker_ids: Iterable[str], s: Session | None = None) -> dict[str, Worker]:
        """The snapshots of these workers, whatever their source, in a few bulk reads."""
        found: dict[str, Worker] = {}
        with self.db.session(s) as session:
            for chunk in chunks(sorted(set(worker_ids))):
                rows = session.execute(
                    select(Snapshot.worker_id, Snapshot.worker).where(col(Snapshot.worker_id).in_(chunk))
                )
                found.update({worker_id: Worker.model_validate(data) for worker_id, data in rows})
        return found

    def handovers(self, s: Session | None = None) -> dict[str, str]:
        """Pre-hire worker id -> the worker that took its accounts over."""
        with self.db.session(s) as session:
            return {h.worker_id: h.successor for h in session.exec(select(Handover)).all()}

    def prehires_elsewhere(self, source: str, handed_over: Iterable[str], s: Session | None = None) -> list[Worker]:
        """Pending workers of other sources, but for those `handed_over`: who a new hire here may be."""
        taken = set(handed_over)
        with self.db.session(s) as session:
            rows = session.exec(select(Snapshot).where(Snapshot.source != source)).all()
        # Filter on the stored JSON first: only the few pre-hires are worth building a Worker for.
        return [
            Worker.model_validate(r.worker)
            for r in rows
            if r.worker.get("status") == "pending" and r.worker_id not in taken
        ]

    def cursor(self, source: str, s: Session | None = None) -> dict[str, Any]:
        with self.db.session(s) as session:
            row = session.get(Cursor, source)
        return dict(row.value) if row else {}

    def set_cursor(self, s: Session, source: str, value: dict[str, Any]) -> None:
        s.merge(Cursor(source=source, value=value, updated_at=utcnow()))

    def upsert(self, s: Session, source: str, workers: Iterable[Worker]) -> None:
        """These workers' snapshots become what they are now."""
        workers = list(workers)
        self.write(s, source, [(w, None) for w in workers], [w.id for w in workers])

    def write(self, s: Session, source: str, workers: list[tuple[Worker, str | None]], replacing: list[str]) -> None:
        """These workers' snapshots with the digests of the records they were read from; `replacing`:
        those of them the store holds already (a new worker costs no delete)."""
        self._delete(s, source, list(replacing))
        now = utcnow()
        rows = (
            {
                "source": source,
                "worker_id": w.id,
                "content_hash": w.content_hash(),
                # Without its empty fields, as events carry it: half the bytes of a new worker's row.
                "worker": RawJSON(w.model_dump_json(exclude_none=True)),
                "updated_at": now,
                "record_digest": digest,
            }
            for w, digest in workers
        )
        insert_rows(s, Snapshot, rows)

    def departed(self, source: str, worker_ids: list[str], s: Session | None = None) -> dict[str, str]:
        """Worker id -> what the hire of these workers, new to the snapshots, is told against: the
        state those that were here before left from (the others are not in it). One read when the
        source never lost anyone, however many are new (a first sync of a million)."""
        with self.db.session(s) as session:
            anyone = select(Departed.worker_id).where(col(Departed.source) == source).limit(1)
            if not worker_ids or session.exec(anyone).first() is None:
                return {}
            found: dict[str, str] = {}
            for chunk in chunks(sorted(set(worker_ids))):
                query = select(Departed.worker_id, Departed.left_from).where(
                    col(Departed.source) == source, col(Departed.worker_id).in_(chunk)
                )
                found.update({w: f"left from {state}" for w, state in session.exec(query)})
        return found

    def set_digests(self, s: Session, source: str, digests: list[tuple[str, str]]) -> None:
        """(worker id, record digest): the record reads differently, the Worker it makes is the same."""
        table = Snapshot.__table__  # type: ignore[attr-defined]
        statement = (
            table.update()
            .where(table.c.source == source, table.c.worker_id == bindparam("wid"))
            .values(record_digest=bindparam("digest"))
        )
        for chunk in chunks(digests, 2000):
            s.connection().execute(statement, [{"wid": wid, "digest": digest} for wid, digest in chunk])

    def remove(self, s: Session, source: str, worker_ids: Iterable[str]) -> None:
        """These workers left the source: their snapshots go, and the state they left from stays
        (`Departed`), which a re-hire is told against."""
        ids = list(worker_ids)
        table = Snapshot.__table__  # type: ignore[attr-defined]
        left: list[dict[str, Any]] = []
        now = utcnow()
        for chunk in chunks(ids):
            query = sa_select(table.c.worker_id, table.c.content_hash, table.c.updated_at).where(
                table.c.source == source, table.c.worker_id.in_(chunk)
            )
            rows = s.connection().execute(query)
            found = [{"source": source, "worker_id": w, "left_from": state_key(h, at), "at": now} for w, h, at in rows]
            # Only those whose snapshot goes now: one that left already (a second, late removal of it)
            # keeps the state it left from.
            gone = [row["worker_id"] for row in found]
            s.exec(delete(Departed).where(col(Departed.source) == source, col(Departed.worker_id).in_(gone)))
            left += found
        insert_rows(s, Departed, left)
        self._delete(s, source, ids)

    def _delete(self, s: Session, source: str, worker_ids: list[str]) -> None:
        # delete + insert instead of merge in `upsert`: merge costs one SELECT per row
        for chunk in chunks(worker_ids):
            s.exec(delete(Snapshot).where(col(Snapshot.source) == source, col(Snapshot.worker_id).in_(chunk)))

    def hand_over(self, s: Session, handovers: Iterable[tuple[str, str, str]]) -> None:
        """(pre-hire, successor, key): the successor keeps any link of its own; the pre-hire's
        others move to it, and the pre-hire's own events stop."""
        for old, new, key in handovers:
            own = s.exec(select(LinkRow.target).where(LinkRow.worker_id == new)).all()
            s.exec(
                update(LinkRow)
                .where(col(LinkRow.worker_id) == old, col(LinkRow.target).not_in(own))
                .values(worker_id=new)
            )
            s.add(Handover(worker_id=old, successor=new, key=key))


def state_key(content_hash: str, stored_at: datetime) -> str:
    """The stored state a change is told against (its event id is made of it): the content and when
    it was stored. A record that goes A → B → A → B makes its two B changes against two stored A
    states, so they are two events with two ids (CloudEvents: one id per distinct event); one change
    told twice against the same stored state (a poll that rolled back and runs again, provision-now
    racing a poll) has one id, and the outbox and the consumer take it once."""
    return f"{content_hash}@{as_utc(stored_at).isoformat()}"


def stored_hash(state: str) -> str:
    """The content hash a `state_key` was made of, as stored (an earlier version's format, maybe)."""
    return state.partition("@")[0]


class StoredSnapshots(Mapping[str, tuple[str, Worker]]):
    """A source's snapshots, (`state_key`, Worker) by worker id, that reads only the content hashes
    (`hashes`) up front: a poll of 100,000 people in which nothing changed compares hashes and never
    builds a Worker from storage. Workers are read on first use, in bulk after `preload`, in the unit
    of work they were read in when there is one."""

    def __init__(self, db: Database, source: str, hashes: dict[str, str], s: Session | None = None):
        self.db = db
        self.source = source
        self.hashes = hashes
        self._session = s
        self._workers: dict[str, tuple[str, Worker]] = {}

    def preload(self, worker_ids: Iterable[str]) -> None:
        wanted = [w for w in worker_ids if w in self.hashes and w not in self._workers]
        for chunk in chunks(wanted):
            with self.db.session(self._session) as s:
                rows = s.execute(
                    select(Snapshot.worker_id, Snapshot.content_hash, Snapshot.updated_at, Snapshot.worker).where(
                        col(Snapshot.source) == self.source, col(Snapshot.worker_id).in_(chunk)
                    )
                )
                self._workers.update({w: (state_key(h, at), Worker.model_validate(data)) for w, h, at, data in rows})

    def __getitem__(self, worker_id: str) -> tuple[str, Worker]:
        if worker_id not in self._workers:
            if worker_id not in self.hashes:
                raise KeyError(worker_id)
            self.preload([worker_id])
        return self._workers[worker_id]

    def __contains__(self, worker_id: object) -> bool:
        return worker_id in self.hashes

    def __iter__(self) -> Iterator[str]:
        return iter(self.hashes)

    def __len__(self) -> int:
        return len(self.hashes)
