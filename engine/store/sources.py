"""Per source: halted by the mass-deprovision guard (and why), failing to be read (and why), last
poll, a person's approval to let held deprovisions through; and the webhook notices already
accepted by any process."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from provisioner.engine.contracts.records import utcnow
from provisioner.engine.store.db import Database
from provisioner.engine.store.tables import Approval, SourceState, WebhookNotice

APPROVAL_LIFETIME = timedelta(days=1)


class SourceStates:
    def __init__(self, db: Database):
        self.db = db

    def states(self, s: Session | None = None) -> dict[str, SourceState]:
        with self.db.session(s) as session:
            return {r.source: r for r in session.exec(select(SourceState)).all()}

    def halt(self, source: str, reason: str, s: Session | None = None) -> None:
        with self.db.session(s) as session:
            state = session.get(SourceState, source) or SourceState(source=source)
            if not state.halted:
                state.halted, state.reason, state.halted_at = True, reason, utcnow()
            session.add(state)

    def fail(self, source: str, reason: str, s: Session | None = None) -> None:
        """The source could not be read at all: nothing of that poll was committed. The first
        failure's time is kept, so `status` says how long it has been failing."""
        with self.db.session(s) as session:
            state = session.get(SourceState, source) or SourceState(source=source)
            if state.failing is None:
                state.failing_since = utcnow()
            state.failing = reason
            session.add(state)

    def polled(self, s: Session, source: str, seen: int | None) -> None:
        """A poll committed: when, how many workers it read (None: leave the count), and the
        source is no longer failing."""
        state = s.get(SourceState, source) or SourceState(source=source)
        state.last_poll_at = utcnow()
        state.workers = seen if seen is not None else state.workers
        state.failing, state.failing_since = None, None
        s.add(state)

    def resume(self, source: str) -> bool:
        """Lift a halt and approve, once, the deprovisions it held (they come again next check)."""
        with self.db.session() as s:
            state = s.get(SourceState, source)
            if state is None or not state.halted:
                return False
            state.halted, state.reason, state.halted_at = False, None, None
            s.add(state)
            s.merge(Approval(source=source, at=utcnow()))
            return True

    def approved(self, within: timedelta = APPROVAL_LIFETIME) -> set[str]:
        with self.db.session() as s:
            return set(s.exec(select(Approval.source).where(col(Approval.at) >= utcnow() - within)).all())

    def consume_approval(self, source: str, within: timedelta = APPROVAL_LIFETIME, s: Session | None = None) -> bool:
        """True (once) if a person resumed this source within `within`; an approval is spent by the
        first check it lets through, and a stale one never counts."""
        with self.db.session(s) as session:
            return bool(
                session.exec(
                    delete(Approval).where(col(Approval.source) == source, col(Approval.at) >= utcnow() - within)
                ).rowcount
            )

    def first_notice(self, key: str, keep: timedelta = timedelta(days=30)) -> bool:
        """True the first time any process sees this webhook notice; notices older than `keep`
        are forgotten. Far beyond any signed timestamp's tolerance, and long enough for the
        vendors that sign none (a replay of those is refused by the body's digest)."""
        now = utcnow()
        try:
            with self.db.session() as s:
                s.exec(delete(WebhookNotice).where(col(WebhookNotice.at) < now - keep))
                s.add(WebhookNotice(key=key, at=now))
            return True
        except IntegrityError:
            return False
