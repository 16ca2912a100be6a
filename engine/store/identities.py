"""Identities: which records are one person (docs/identity.md). A person is named by its anchor,
the worker id of its first record, under which its links (accounts) are kept; a record without a
row is a person of its own. Match values ("work_email=ada@example.com") are kept per record so a
new record is looked up by index, not by reading every snapshot.

Reads open their own session unless given the caller's (`s`); writes happen only inside a caller's
unit of work."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, update
from sqlmodel import Session, col, select

from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.db import Database, RawJSON, chunks, insert_rows
from provisioner.engine.store.tables import IdentityKey, IdentityRow, LinkRow


@dataclass(frozen=True)
class Member:
    """One record of a person and why it was joined."""

    worker_id: str
    person_id: str
    why: str
    manual: bool


class Identities:
    def __init__(self, db: Database):
        self.db = db

    def rows(self, worker_ids: Iterable[str], s: Session | None = None) -> dict[str, Member]:
        """The rows of these records (records of a person of their own have none)."""
        found: dict[str, Member] = {}
        with self.db.session(s) as session:
            for chunk in chunks(sorted(set(worker_ids))):
                query = select(IdentityRow).where(col(IdentityRow.worker_id).in_(chunk))
                found.update({r.worker_id: _member(r) for r in session.exec(query)})
        return found

    def members(self, person_ids: Iterable[str], s: Session | None = None) -> dict[str, list[Member]]:
        """Each person's records, the anchor's own row included."""
        found: dict[str, list[Member]] = {}
        with self.db.session(s) as session:
            for chunk in chunks(sorted(set(person_ids))):
                query = select(IdentityRow).where(col(IdentityRow.person_id).in_(chunk))
                for r in session.exec(query):
                    found.setdefault(r.person_id, []).append(_member(r))
        return found

    def person_of(self, worker_id: str, s: Session | None = None) -> str:
        row = self.rows([worker_id], s).get(worker_id)
        return row.person_id if row else worker_id

    def all(self) -> list[Member]:
        with self.db.session() as session:
            rows = session.exec(select(IdentityRow).order_by(col(IdentityRow.person_id))).all()
        return [_member(r) for r in rows]

    def holders(self, keys: Iterable[str], s: Session | None = None) -> dict[str, set[str]]:
        """Key -> the records that have it."""
        found: dict[str, set[str]] = {}
        with self.db.session(s) as session:
            for chunk in chunks(sorted(set(keys))):
                query = select(IdentityKey.key, IdentityKey.worker_id).where(col(IdentityKey.key).in_(chunk))
                for key, worker_id in session.execute(query):
                    found.setdefault(key, set()).add(worker_id)
        return found

    def set_keys(self, s: Session, keys: Mapping[str, Iterable[str]]) -> None:
        """These records' match values become these (a record without any is forgotten)."""
        self.forget_keys(s, list(keys))
        rows = ({"key": key, "worker_id": wid} for wid, values in keys.items() for key in dict.fromkeys(values))
        insert_rows(s, IdentityKey, rows)

    def forget_keys(self, s: Session, worker_ids: list[str]) -> None:
        for chunk in chunks(worker_ids):
            s.exec(delete(IdentityKey).where(col(IdentityKey.worker_id).in_(chunk)))

    def join_all(self, s: Session, joins: Mapping[str, tuple[str, str]]) -> None:
        """Record -> (person, why), in bulk (a poll's joins): each anchor gets its own row too."""
        if not joins:
            return
        anchors = sorted({p for p, _ in joins.values()} - set(joins))
        have = {
            wid
            for chunk in chunks(anchors)
            for wid in s.exec(select(IdentityRow.worker_id).where(col(IdentityRow.worker_id).in_(chunk)))
        }
        for chunk in chunks(sorted(joins)):
            s.exec(delete(IdentityRow).where(col(IdentityRow.worker_id).in_(chunk)))
        now = utcnow()
        rows = [_row(p, p, "the first record", now) for p in anchors if p not in have]
        insert_rows(s, IdentityRow, rows + [_row(w, p, why, now) for w, (p, why) in joins.items()])

    def join(self, s: Session, worker_id: str, person_id: str, why: str, manual: bool = False) -> None:
        """The record belongs to this person from now on (the anchor gets its own row too)."""
        for wid, reason in ((person_id, "the first record"), (worker_id, why)):
            if wid == worker_id or s.get(IdentityRow, wid) is None:
                s.merge(IdentityRow(worker_id=wid, person_id=person_id, why=reason, manual=manual, at=utcnow()))

    def person(self, person_id: str, s: Session | None = None) -> Worker | None:
        """The person as last planned, when it has more than one record."""
        with self.db.session(s) as session:
            row = session.get(IdentityRow, person_id)
        return Worker.model_validate(row.person) if row is not None and row.person else None

    def planned(self, worker_ids: Iterable[str] | None = None, s: Session | None = None) -> dict[str, Worker]:
        """Person id -> the person as last planned, for these ids (None: every person of several
        records): what a re-plan (a deferred action, a retry, a reconcile) starts from instead of
        the anchor's own record, which may have ended or gone."""
        query = select(IdentityRow.worker_id, IdentityRow.person).where(col(IdentityRow.person).is_not(None))
        with self.db.session(s) as session:
            if worker_ids is None:
                rows = list(session.execute(query))
            else:
                rows = [
                    r
                    for c in chunks(sorted(set(worker_ids)))
                    for r in session.execute(query.where(col(IdentityRow.worker_id).in_(c)))
                ]
        return {wid: Worker.model_validate(data) for wid, data in rows if data}

    def joined(self, s: Session | None = None) -> dict[str, str]:
        """Record -> its person, for records joined to another (their accounts are the person's)."""
        query = select(IdentityRow.worker_id, IdentityRow.person_id).where(
            IdentityRow.worker_id != IdentityRow.person_id
        )
        with self.db.session(s) as session:
            return {wid: pid for wid, pid in session.execute(query)}

    def set_person(self, s: Session, person_id: str, worker: Worker | None) -> None:
        self.set_persons(s, {person_id: worker})

    def set_persons(self, s: Session, persons: Mapping[str, Worker | None]) -> None:
        """Each person as now planned (None: none of its records is left), in one executemany."""
        if not persons:
            return
        table = IdentityRow.__table__  # type: ignore[attr-defined]
        statement = table.update().where(table.c.worker_id == bindparam("anchor")).values(person=bindparam("state"))
        s.execute(
            statement,
            [{"anchor": p, "state": None if w is None else RawJSON(w.model_dump_json())} for p, w in persons.items()],
        )

    def keep_apart(self, s: Session, worker_id: str, why: str) -> None:
        """A person of its own, by a person's decision: the rules no longer join it."""
        s.merge(IdentityRow(worker_id=worker_id, person_id=worker_id, why=why, manual=True, at=utcnow()))

    def move_links(self, s: Session, old: str, new: str) -> list[str]:
        """`old`'s links move to `new` where `new` has none; returns the targets where both have one
        (those stay: two accounts of one person are for a person to settle)."""
        own = set(s.exec(select(LinkRow.target).where(LinkRow.worker_id == new)).all())
        theirs = set(s.exec(select(LinkRow.target).where(LinkRow.worker_id == old)).all())
        s.exec(
            update(LinkRow).where(col(LinkRow.worker_id) == old, col(LinkRow.target).not_in(own)).values(worker_id=new)
        )
        return sorted(own & theirs)

    def move(self, s: Session, from_person: str, to_person: str, why: str) -> None:
        """Every record of one person joins another (a manual link of two people)."""
        for row in s.exec(select(IdentityRow).where(IdentityRow.person_id == from_person)).all():
            s.merge(IdentityRow(worker_id=row.worker_id, person_id=to_person, why=why, manual=True, at=utcnow()))


def _row(worker_id: str, person_id: str, why: str, at: datetime) -> dict[str, object]:
    return {"worker_id": worker_id, "person_id": person_id, "why": why, "manual": False, "at": at}


def _member(row: IdentityRow) -> Member:
    return Member(row.worker_id, row.person_id, row.why, row.manual)
