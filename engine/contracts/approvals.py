"""Approvals: the request a gated grant makes, the requests a caller who may not act alone makes
(provision now, retry, access outside the policies), and who is asking to decide one.

Plain records: the store maps its rows to `ApprovalRequest`; the API, console and CLI name the
person deciding as an `Approver` (from a named token, never from the shared one)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, computed_field


class ApprovalState(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    expired = "expired"  # nobody answered in time: denied, and reported
    void = "void"  # the reason for the grant ended (a move out of scope, a leaver) before or after approval


class RequestKind(StrEnum):
    grant = "grant"  # a policy's grant that waits (approval: in the config)
    provision = "provision"  # re-plan one person now
    retry = "retry"  # re-apply failed writes of a person, a target, or both
    access = "access"  # an account (+ groups) in one target for one person that no policy gives


class ApprovalRequest(BaseModel):
    """One thing waiting on a person's yes: a grant (an account and/or groups in one target) one
    person waits on, or a request someone made (`requested_by`)."""

    id: str
    kind: RequestKind = RequestKind.grant
    worker_id: str | None = Field(description="the person it is about; None only for a retry of a whole target")
    target: str | None = Field(description="None only for a provision-now request (every target)")
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
    requested_by: str | None = Field(default=None, description="who asked; None for a policy's grant")
    request_reason: str | None = Field(default=None, description="why they asked, in their words")
    access_for: float | None = Field(
        default=None, description="access: seconds it lasts once approved (expires_at then says when it ends)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def asks(self) -> str:
        """What it asks, in the words the console, the CLI and the API all show."""
        grant = ", ".join(["account", *self.groups] if self.account else self.groups)
        if self.kind is RequestKind.provision:
            return f"provision {self.worker_id} now (re-plan every target)"
        if self.kind is RequestKind.retry:
            whose = " in ".join(x for x in (self.worker_id, self.target) if x)
            return f"retry the failed writes of {whose}"
        if self.kind is RequestKind.access:
            return f"access outside the policies: {grant} in {self.target}"
        return f"{grant} in {self.target} (policy {self.policy})"


class Approver(BaseModel):
    """Who is deciding: the name of their token, the worker they are (if said), their groups."""

    name: str
    person: str | None = None
    groups: list[str] = Field(default_factory=list)
    tokens: list[str] = Field(
        default_factory=list, description="the names of every token of the same person (an agent's too)"
    )


def grant_key(policy: str, target: str, groups: list[str]) -> str:
    """The identity of a grant for one person: a move that changes its groups is a new grant."""
    return f"{policy}|{target}|{','.join(sorted(groups))}"


ACCESS_POLICY = "access:"  # the policy name an approved access request grants under: access:<request id>
ACCESS_LASTS = "access-lasts|"  # + target: a plan's mark that access requests there last (not a leaver)


@dataclass(frozen=True)
class AccessGrant:
    """An approved access request as the planner reads it: handed in among the approved keys of a
    worker (`key`), so every caller that plans with approvals plans with these too."""

    request: str
    target: str
    groups: tuple[str, ...]
    requested_by: str
    approved_by: str
    until: datetime | None = None  # the access ends then (approvals.requests.access_for); None: while it lasts

    @property
    def policy(self) -> str:
        return f"{ACCESS_POLICY}{self.request}"

    @property
    def why(self) -> str:
        return f"access requested by {self.requested_by}, approved by {self.approved_by}"

    @property
    def key(self) -> str:
        until = self.until.isoformat() if self.until is not None else None
        return ACCESS_POLICY + json.dumps(
            [self.request, self.target, list(self.groups), self.requested_by, self.approved_by, until]
        )

    @classmethod
    def parse(cls, key: str) -> AccessGrant | None:
        """The grant a key names; None for the key of a policy's grant."""
        if not key.startswith(ACCESS_POLICY + "["):
            return None
        request, target, groups, requested_by, approved_by, until = json.loads(key.removeprefix(ACCESS_POLICY))
        ends = datetime.fromisoformat(until) if until is not None else None
        return cls(request, target, tuple(groups), requested_by, approved_by, ends)
