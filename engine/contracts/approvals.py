"""Approvals of sensitive grants: the request a gated grant makes, and who is asking to decide it.

Plain records: the store maps its rows to `ApprovalRequest`; the API, console and CLI name the
person deciding as an `Approver` (from a named token, never from the shared one)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class ApprovalState(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    expired = "expired"  # nobody answered in time: denied, and reported
    void = "void"  # the reason for the grant ended (a move out of scope, a leaver) before or after approval


class ApprovalRequest(BaseModel):
    """One grant (an account and/or groups in one target) one person waits on."""

    id: str
    worker_id: str
    target: str
    key: str = Field(description="the grant: policy, target and groups; the same grant asks once")
    account: bool = Field(description="true: the account itself waits (no other grant gives it)")
    groups: list[str] = Field(default_factory=list)
    policy: str
    rule: str = Field(description="who may approve: manager | group:<name> | people:a,b")
    reason_required: bool = False
    requested_at: datetime
    expires_at: datetime
    state: ApprovalState
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None


class Approver(BaseModel):
    """Who is deciding: the name of their token, the worker they are (if said), their groups."""

    name: str
    person: str | None = None
    groups: list[str] = Field(default_factory=list)


def grant_key(policy: str, target: str, groups: list[str]) -> str:
    """The identity of a grant for one person: a move that changes its groups is a new grant."""
    return f"{policy}|{target}|{','.join(sorted(groups))}"
