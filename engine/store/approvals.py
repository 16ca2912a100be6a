"""Approval requests: those of sensitive grants made, voided and expired with the outcomes and due
work that cause them (in the caller's unit of work), those someone asks for (provision now, retry,
access outside the policies) made when asked; each decided by a person through a conditional
update (two approvers at once: one wins, the other is told it was decided)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from provisioner.engine.contracts.approvals import (
    ACCESS_LASTS,
    AccessGrant,
    ApprovalRequest,
    ApprovalState,
    RequestKind,
)
from provisioner.engine.contracts.models import Action
from provisioner.engine.contracts.records import EventOutcome, LogEntry, utcnow
from provisioner.engine.store.db import Database, as_utc, chunks, insert_new
from provisioner.engine.store.tables import ApprovalRow

OPEN = (ApprovalState.pending.value, ApprovalState.approved.value)
PLANNED = (RequestKind.grant.value, RequestKind.access.value)  # kinds whose reason a plan says lasts or not


def _record(row: ApprovalRow) -> ApprovalRequest:
    request = ApprovalRequest.model_validate(row, from_attributes=True)
    for name in ("requested_at", "expires_at", "decided_at"):
        moment = getattr(request, name)
        if moment is not None:
            setattr(request, name, as_utc(moment))
    return request


def entry(request: ApprovalRequest, action: str, result: str, reason: str, event_id: str | None = None) -> LogEntry:
    """The log row of something that happened to a request: asked, approved, denied, expired, void."""
    return LogEntry(
        event_id=event_id,
        worker_id=request.worker_id or "*",  # a retry of a whole target is about nobody in particular
        target=request.target,
        action=action,
        policy=request.policy or None,
        reason=reason,
        attributes={
            "request": request.id,
            "kind": request.kind.value,
            "groups": request.groups,
            "account": request.account,
            **({"requested_by": request.requested_by} if request.requested_by else {}),
            **({"by": request.decided_by} if request.decided_by else {}),
        },
        result=result,
    )


def _lasts(row: ApprovalRow, lasting: set[str]) -> bool:
    """Whether the reason for this request still holds, by the plan's `lasting` keys."""
    if row.kind == RequestKind.access.value:
        return f"{ACCESS_LASTS}{row.target}" in lasting
    return row.key in lasting


def _timed_out(row: ApprovalRow, now: datetime) -> bool:
    """Approved access for a time (approvals.requests.access_for) whose time is over."""
    return bool(row.access_for) and row.state == ApprovalState.approved.value and as_utc(row.expires_at) <= as_utc(now)


class Approvals:
    def __init__(self, db: Database):
        self.db = db

    def approved_keys(self, worker_ids: Iterable[str]) -> dict[str, set[str]]:
        """Per worker, the keys of their grants approved and still lasting: what a plan may write.
        An approved access request comes as its `AccessGrant.key`, which says who asked and who
        approved."""
        out: dict[str, set[str]] = {}
        with self.db.session() as s:
            if s.exec(select(ApprovalRow.id).limit(1)).first() is None:
                return out  # the common case: nothing was ever asked
            for chunk in chunks(sorted(set(worker_ids))):
                rows = s.exec(
                    select(ApprovalRow).where(
                        col(ApprovalRow.worker_id).in_(chunk),
                        col(ApprovalRow.kind).in_(PLANNED),
                        ApprovalRow.state == ApprovalState.approved.value,
                        col(ApprovalRow.ended_at).is_(None),
                    )
                ).all()
                for row in rows:
                    out.setdefault(row.worker_id or "", set()).add(_planning_key(row))
        return out

    def settle(self, s: Session, outcomes: list[EventOutcome], now: datetime | None = None) -> list[LogEntry]:
        """In the unit recording a batch: each planned worker's grants that wait get a request (once
        per grant while its reason lasts), and their requests for grants whose reason ended are
        closed (pending or approved ones become void). The log entries of what changed."""
        planned = {o.event.subject: o for o in outcomes if o.event is not None and o.lasting is not None}
        if not planned:
            return []
        asking = any(o.requests for o in planned.values())
        if (
            not asking
            and s.exec(select(ApprovalRow.id).where(col(ApprovalRow.ended_at).is_(None)).limit(1)).first() is None
        ):
            return []
        now = now or utcnow()
        current: dict[str, list[ApprovalRow]] = {}
        for chunk in chunks(sorted(planned)):
            query = select(ApprovalRow).where(
                col(ApprovalRow.worker_id).in_(chunk),
                col(ApprovalRow.kind).in_(PLANNED),
                col(ApprovalRow.ended_at).is_(None),
            )
            for row in s.exec(query).all():
                current.setdefault(row.worker_id or "", []).append(row)
        entries: list[LogEntry] = []
        new_rows = []
        asked_by_row: dict[str, LogEntry] = {}  # the log entry of each request this unit would open
        for worker_id, outcome in planned.items():
            rows = current.get(worker_id, [])
            lasting = outcome.lasting or set()
            for row in rows:
                if _lasts(row, lasting) and not _timed_out(row, now):
                    continue
                row.ended_at = now
                if row.state in OPEN:
                    row.reason = (
                        "the access requested lasted its time (approvals.requests.access_for)"
                        if _timed_out(row, now)
                        else "the reason for the grant ended (out of the policy's scope, or left)"
                    )
                    row.state, row.decided_at = ApprovalState.void.value, now
                    entries.append(entry(_record(row), "approval_void", "skipped", row.reason, outcome.event_id))
                s.add(row)
            asked = {row.key for row in rows if _lasts(row, lasting)}
            for action in outcome.requests:
                key = str(action.attributes["key"])
                if key in asked:
                    continue
                asked.add(key)
                row = _request_row(action, now)
                new_rows.append(row.model_dump())
                asked_by_row[row.id] = entry(
                    _record(row), "approval_requested", "skipped", action.reason, outcome.event_id
                )
        # Another engine recording the same grant at once opened it already: asked once, logged once.
        opened = insert_new(s, ApprovalRow, new_rows, "id")
        return entries + [logged for row_id, logged in asked_by_row.items() if row_id in opened]

    def expire_due(self, s: Session, now: datetime) -> list[ApprovalRequest]:
        """Pending requests past their time are denied as expired (in the caller's unit)."""
        due = select(ApprovalRow).where(
            ApprovalRow.state == ApprovalState.pending.value, col(ApprovalRow.expires_at) <= as_utc(now)
        )
        expired = []
        for row in s.exec(due).all():
            taken = s.exec(
                update(ApprovalRow)
                .where(col(ApprovalRow.id) == row.id, col(ApprovalRow.state) == ApprovalState.pending.value)
                .values(
                    state=ApprovalState.expired.value,
                    decided_at=now,
                    decided_by="expiry",
                    reason="nobody decided in time",
                )
            ).rowcount
            if taken:
                s.refresh(row)
                expired.append(_record(row))
        return expired

    def decide(
        self, s: Session, request_id: str, state: ApprovalState, by: str, reason: str | None, now: datetime
    ) -> ApprovalRequest | None:
        """Approve or deny a pending request; None when it is no longer pending (decided meanwhile)."""
        taken = s.exec(
            update(ApprovalRow)
            .where(col(ApprovalRow.id) == request_id, col(ApprovalRow.state) == ApprovalState.pending.value)
            .values(state=state.value, decided_by=by, decided_at=now, reason=reason)
        ).rowcount
        if not taken:
            return None
        # A request that is run once (provision now, retry) is history once decided.
        s.exec(
            update(ApprovalRow)
            .where(col(ApprovalRow.id) == request_id, col(ApprovalRow.kind).not_in(PLANNED))
            .values(ended_at=now)
        )
        row = s.get(ApprovalRow, request_id)
        assert row is not None
        s.refresh(row)
        if state is ApprovalState.approved and row.access_for:  # access for a time: from now on, expires_at ends it
            row.expires_at = as_utc(now) + timedelta(seconds=row.access_for)
            s.add(row)
        return _record(row)

    def get(self, request_id: str) -> ApprovalRequest | None:
        with self.db.session() as s:
            row = s.get(ApprovalRow, request_id)
            return _record(row) if row is not None else None

    def ask(self, s: Session, request: ApprovalRequest) -> ApprovalRequest:
        """A request someone makes (in the caller's unit); the same one still open (pending, or an
        approved access that lasts) is answered instead of asking twice."""
        open_same = select(ApprovalRow).where(
            ApprovalRow.kind == request.kind.value,
            ApprovalRow.worker_id == request.worker_id,
            ApprovalRow.key == request.key,
            col(ApprovalRow.state).in_(OPEN if request.kind is RequestKind.access else OPEN[:1]),
            col(ApprovalRow.ended_at).is_(None),
        )
        if (same := s.exec(open_same).first()) is not None:
            return _record(same)
        row = ApprovalRow.model_validate(request.model_dump(exclude={"asks"}))
        if insert_new(s, ApprovalRow, [row.model_dump()], "id"):
            return request
        # Another process asked the same a moment ago (uq_approval_request_pending): theirs stands.
        return _record(s.exec(open_same).one())

    def list(
        self,
        state: str | None = None,
        worker_id: str | None = None,
        target: str | None = None,
        limit: int = 500,
        kind: str | None = None,
    ) -> list[ApprovalRequest]:
        """Requests, oldest first; `state` one of ApprovalState's values, `kind` of RequestKind's."""
        with self.db.session() as s:
            query = select(ApprovalRow).order_by(col(ApprovalRow.requested_at), col(ApprovalRow.id)).limit(limit)
            if state:
                query = query.where(ApprovalRow.state == state)
            if kind:
                query = query.where(ApprovalRow.kind == kind)
            if worker_id:
                query = query.where(ApprovalRow.worker_id == worker_id)
            if target:
                query = query.where(ApprovalRow.target == target)
            return [_record(r) for r in s.exec(query).all()]


def _planning_key(row: ApprovalRow) -> str:
    """The key a plan reads: a policy grant's own, or an approved access request as a grant."""
    if row.kind != RequestKind.access.value:
        return row.key
    until = as_utc(row.expires_at) if row.access_for else None
    grant = AccessGrant(
        row.id, row.target or "", tuple(row.groups), row.requested_by or "?", row.decided_by or "?", until
    )
    return grant.key


def _request_row(action: Action, now: datetime) -> ApprovalRow:
    attributes = action.attributes
    return ApprovalRow(
        id=secrets.token_hex(6),
        worker_id=action.worker_id,
        target=action.target,
        key=str(attributes["key"]),
        account=bool(attributes.get("account")),
        groups=list(action.groups),
        policy=action.policy or "",
        rule=str(attributes.get("by", "")),
        reason_required=bool(attributes.get("reason_required")),
        requested_at=now,
        expires_at=as_utc(now) + timedelta(seconds=float(attributes.get("expires_after", 7 * 86400))),
        state=ApprovalState.pending.value,
    )
