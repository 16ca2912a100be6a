"""Claims shared by every engine on one store: an event being applied (so a rebalance never
applies one change twice), and things that must exist once per target (a group of a name).

A claim is a short lease (owner, expires_at). Its owner renews all of its claims with one
statement per heartbeat and deletes an event's claim in the transaction that records the event's
outcome; another engine takes a claim over only once it expired or its owner is provably gone.
A target claim without a remote id can also be a plain lease (`lease`/`unlease`): held around one
write that must not interleave with another engine's (a group's read-modify-write without ETags)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, bindparam, delete, update
from sqlmodel import Session, col, select

from provisioner.engine.contracts.records import utcnow
from provisioner.engine.kit.process import owner_is_gone
from provisioner.engine.store.bulk import where_in
from provisioner.engine.store.db import Database, chunks, dialect_insert, insert_new
from provisioner.engine.store.outbox import applied_among
from provisioner.engine.store.tables import EventClaim, TargetClaim

_EVENT_CLAIMS = EventClaim.__table__  # type: ignore[attr-defined]


def _key(target: str, kind: str, name: str) -> tuple[Any, ...]:
    return col(TargetClaim.target) == target, col(TargetClaim.kind) == kind, col(TargetClaim.name) == name


class Claimed(NamedTuple):
    mine: set[str]  # event ids this owner holds now
    taken_over: int  # of those, claims another owner had let expire (or a dead owner left)


class Claims:
    def __init__(self, db: Database):
        self.db = db

    def take(self, event_ids: list[str], owner: str, seconds: float) -> Claimed:
        """Claim these events for `owner`, in one upsert per chunk of ids: inserted where free,
        taken where expired, dead or ours already; left alone where another live engine has it."""
        now = utcnow()
        rows = [{"event_id": eid, "owner": owner, "expires_at": now + timedelta(seconds=seconds)} for eid in event_ids]
        mine: set[str] = set()
        taken_over = 0
        with self.db.session() as s:
            for chunk in chunks(rows):
                ids = [r["event_id"] for r in chunk]
                query = select(EventClaim.event_id, EventClaim.owner).where(col(EventClaim.event_id).in_(ids))
                held = dict(s.exec(query).all())
                gone = sorted({o for o in held.values() if o != owner and owner_is_gone(o)})
                statement = dialect_insert(s, EventClaim)
                free = (col(EventClaim.expires_at) < now) | (col(EventClaim.owner) == owner)
                for dead in gone:  # one bound value each: an expanding IN cannot go with executemany below
                    free |= col(EventClaim.owner) == dead
                statement = statement.on_conflict_do_update(
                    index_elements=["event_id"],
                    set_={"owner": statement.excluded.owner, "expires_at": statement.excluded.expires_at},
                    where=free,
                ).returning(EventClaim.event_id)
                # The chunk as parameters (insertmanyvalues): one cached compilation, see db.insert_new.
                got = set(s.connection().execute(statement, chunk).scalars())
                # An event recorded after the caller looked at the outbox left a free claim behind
                # (recording deletes both): granting it would apply that change a second time. Read
                # after the upsert, this sees every recording that committed before the claim.
                done = applied_among(s.connection(), list(got)) if got else set()
                if done:
                    s.exec(delete(EventClaim).where(col(EventClaim.event_id).in_(list(done))))
                    got -= done
                mine |= got
                taken_over += sum(1 for eid in got if held.get(eid, owner) != owner)
        return Claimed(mine, taken_over)

    def elsewhere(self, event_ids: list[str], owner: str) -> set[str]:
        """Those of these events another owner holds a live claim on (it may be applying them)."""
        c = _EVENT_CLAIMS.c
        now = bindparam("now", type_=c.expires_at.type)

        def query(is_in: ColumnElement[bool]) -> Select[tuple[str]]:
            return select(c.event_id).where(
                is_in, c.owner != bindparam("owner", type_=c.owner.type), c.expires_at >= now
            )

        with self.db.session() as s:
            rows = where_in(
                s.connection(), "claims.elsewhere", query, c.event_id, event_ids, {"owner": owner, "now": utcnow()}
            )
        return {row[0] for row in rows}

    def renew(self, owner: str, seconds: float) -> int:
        with self.db.session() as s:
            expires = utcnow() + timedelta(seconds=seconds)
            return s.exec(update(EventClaim).where(col(EventClaim.owner) == owner).values(expires_at=expires)).rowcount

    def release(self, event_ids: list[str], owner: str) -> None:
        """Claims of events this owner will not apply after all (their partition moved on)."""
        with self.db.session() as s:
            for chunk in chunks(event_ids):
                s.exec(delete(EventClaim).where(col(EventClaim.owner) == owner, col(EventClaim.event_id).in_(chunk)))

    def release_all(self, owner: str) -> int:
        """A clean stop: this owner's claims on events it did not record. They would hold those
        events from every engine until they expire, and from a relay that re-publishes what no live
        owner claims (a later engine in this same process) for good."""
        with self.db.session() as s:
            return s.exec(delete(EventClaim).where(col(EventClaim.owner) == owner)).rowcount or 0

    def end(self, s: Session, event_ids: list[str]) -> None:
        """Claims of events whose outcome this unit of work records: whoever held them is done."""
        where_in(s.connection(), "claims.end", _EVENT_CLAIMS.delete().where, _EVENT_CLAIMS.c.event_id, event_ids)

    def live(self, now: datetime | None = None) -> dict[str, str]:
        """Event id → owner of every claim not expired."""
        with self.db.session() as s:
            query = select(EventClaim.event_id, EventClaim.owner).where(col(EventClaim.expires_at) >= (now or utcnow()))
            return dict(s.exec(query).all())

    def target_claim(self, target: str, kind: str, name: str, owner: str, seconds: float) -> tuple[bool, str | None]:
        """(won, remote id): the first engine to ask wins the right to create the thing and must
        `settle` its id; later ones get the id once settled (None meanwhile). A winner that died
        before settling is replaced once its claim expires."""
        now = utcnow()
        expires = now + timedelta(seconds=seconds)
        row = {"target": target, "kind": kind, "name": name, "owner": owner, "expires_at": expires}
        with self.db.session() as s:
            if insert_new(s, TargetClaim, [row], "name"):
                return True, None
            key = _key(target, kind, name)
            current = s.exec(select(TargetClaim).where(*key)).one()
            if current.remote_id is not None:
                return False, current.remote_id
            stale = current.owner == owner or current.expires_at < now or owner_is_gone(current.owner)
            if (
                stale
                and s.exec(
                    update(TargetClaim)
                    .where(*key, col(TargetClaim.owner) == current.owner, col(TargetClaim.remote_id).is_(None))
                    .values(owner=owner, expires_at=expires)
                ).rowcount
            ):
                return True, None
            return False, None

    def settle_target(self, target: str, kind: str, name: str, owner: str, remote_id: str | None) -> None:
        """The winner's result: the id it created or found; None gives the claim up (it failed)."""
        key = _key(target, kind, name)
        with self.db.session() as s:
            if remote_id is None:
                s.exec(delete(TargetClaim).where(*key, col(TargetClaim.owner) == owner))
            else:
                s.exec(update(TargetClaim).where(*key).values(remote_id=remote_id))

    def forget_target(self, target: str, kind: str, name: str, remote_id: str | None = None) -> None:
        """The thing is gone from the target (reconcile merged it away, or a writer found it deleted):
        the next use claims anew. With `remote_id`, only a claim still naming that id goes (one
        another engine settled anew meanwhile stays)."""
        key = _key(target, kind, name)
        with self.db.session() as s:
            if remote_id is None:
                s.exec(delete(TargetClaim).where(*key))
            else:
                s.exec(delete(TargetClaim).where(*key, col(TargetClaim.remote_id) == remote_id))

    def lease(self, target: str, kind: str, name: str, owner: str, seconds: float) -> bool:
        """Take a short lease on one thing of a target: True when `owner` holds it now. Not
        re-entrant (two writes of one engine exclude each other too); taken over once expired or
        its owner is provably gone, so a crashed holder blocks no one for longer than `seconds`."""
        now = utcnow()
        row = {
            "target": target,
            "kind": kind,
            "name": name,
            "owner": owner,
            "expires_at": now + timedelta(seconds=seconds),
        }
        key = _key(target, kind, name)
        with self.db.session() as s:
            holder = s.exec(select(TargetClaim.owner).where(*key)).one_or_none()
            free = col(TargetClaim.expires_at) < now
            if holder is not None and holder != owner and owner_is_gone(holder):
                free |= col(TargetClaim.owner) == holder
            statement = dialect_insert(s, TargetClaim).values([row])
            statement = statement.on_conflict_do_update(
                index_elements=["target", "kind", "name"],
                set_={"owner": statement.excluded.owner, "expires_at": statement.excluded.expires_at},
                where=free,
            ).returning(TargetClaim.name)
            return s.connection().execute(statement).first() is not None

    def unlease(self, target: str, kind: str, name: str, owner: str) -> None:
        """Give a lease back (only while this owner still holds it: one taken over stays)."""
        key = _key(target, kind, name)
        with self.db.session() as s:
            s.exec(delete(TargetClaim).where(*key, col(TargetClaim.owner) == owner))
