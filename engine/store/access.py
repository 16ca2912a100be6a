"""Who may still hold access they should not: a removal that failed (a leaver's account still
active, a mover's old group), and people holding accounts whose source record could not be read.
Read from the store, so every replica and command gives the same answer."""

from __future__ import annotations

from sqlalchemy import or_
from sqlmodel import Session, col, select

from provisioner.engine.contracts.models import REVOCATIONS, ActionKind, WorkerStatus, worker_id
from provisioner.engine.contracts.records import ANY_TARGET, AccessNotRemoved, MayKeepAccess
from provisioner.engine.store.db import Database, as_utc, chunks
from provisioner.engine.store.tables import FailureRow, LinkRow, LogRow, QuarantineRow, Snapshot

_REVOKING = sorted(kind.value for kind in REVOCATIONS)


class Access:
    def __init__(self, db: Database):
        self.db = db

    def not_removed(self) -> list[AccessNotRemoved]:
        """Failures whose first failed action takes access away (revocations run first), with what
        the linked account still has, and leavers whose change could not even be planned (a policy
        failing for them) while their accounts are active; an account already gone is not listed."""
        with self.db.session() as s:
            failures = s.exec(
                select(FailureRow)
                .where(or_(col(FailureRow.action).in_(_REVOKING), col(FailureRow.target) == ANY_TARGET))
                .order_by(col(FailureRow.first_at), col(FailureRow.worker_id))
            ).all()
            out = []
            for f in failures:
                for link, remains in self._remaining(s, f):
                    out.append(
                        AccessNotRemoved(
                            worker_id=f.worker_id,
                            target=link.target,
                            account_id=link.account_id,
                            remains=remains,
                            since=as_utc(f.first_at),
                            error=f.last_error,
                        )
                    )
            return out

    def _remaining(self, s: Session, f: FailureRow) -> list[tuple[LinkRow, list[str]]]:
        if f.target == ANY_TARGET:  # nothing ran: a leaver's every active account remains
            snapshot = s.exec(select(Snapshot.worker).where(Snapshot.worker_id == f.worker_id)).first()
            if snapshot is not None and snapshot.get("status") != WorkerStatus.terminated:
                return []
            links = s.exec(select(LinkRow).where(LinkRow.worker_id == f.worker_id, col(LinkRow.active))).all()
            return [(link, [f"account {link.account_id}"]) for link in links]
        link = s.get(LinkRow, (f.worker_id, f.target))
        if link is None:
            return []
        remains = []
        if f.action == ActionKind.delete or (f.action == ActionKind.disable and link.active):
            remains.append(f"account {link.account_id}")
        if f.action == ActionKind.remove_groups:
            remains += [f"member of {g}" for g in self._unremoved(s, f.worker_id, f.target, link.groups)]
        return [(link, remains)] if remains else []

    @staticmethod
    def _unremoved(s: Session, worker_id: str, target: str, groups: list[str]) -> list[str]:
        """The groups the latest failed removal named that the link still holds: every group of
        that event that failed (each group is an action of its own), not the last one only."""
        failed = (
            select(LogRow)
            .where(
                LogRow.worker_id == worker_id,
                LogRow.target == target,
                LogRow.action == ActionKind.remove_groups.value,
                LogRow.result == "failure",
            )
            .order_by(col(LogRow.id).desc())
        )
        latest = s.exec(failed.limit(1)).first()
        if latest is None:
            return groups
        same = s.exec(failed.where(LogRow.event_id == latest.event_id)).all() if latest.event_id else [latest]
        named = {g for entry in same for g in entry.attributes.get("groups", [])}
        return [g for g in groups if g in named]

    def unreadable_holders(self) -> list[MayKeepAccess]:
        """Quarantined records of people who hold accounts: whatever changed for them at the source
        (a termination above all) cannot be applied while the record cannot be read."""
        with self.db.session() as s:
            held = s.exec(select(QuarantineRow).where(col(QuarantineRow.remote_id).is_not(None))).all()
            by_worker = {worker_id(q.source, q.remote_id): q for q in held if q.remote_id}
            targets: dict[str, list[str]] = {}
            for chunk in chunks(sorted(by_worker)):
                rows = s.exec(select(LinkRow.worker_id, LinkRow.target).where(col(LinkRow.worker_id).in_(chunk)))
                for holder, target in rows.all():
                    targets.setdefault(holder, []).append(target)
        return [
            MayKeepAccess(
                worker_id=holder,
                source=by_worker[holder].source,
                targets=sorted(names),
                reason=by_worker[holder].reason,
                since=as_utc(by_worker[holder].at),
            )
            for holder, names in sorted(targets.items())
        ]
