"""Who may decide an approval request: the rule its grant named, the approver, the person asking.

Pure: the caller brings the approver (from a named token) and the worker's stored record."""

from __future__ import annotations

from provisioner.engine.contracts.approvals import ApprovalRequest, Approver
from provisioner.engine.contracts.models import Worker


def refusal(request: ApprovalRequest, approver: Approver, worker: Worker | None) -> str | None:
    """Why this approver may not decide this request (one line), or None when they may."""
    if approver.person is None:
        # Without it nothing tells this approver from the person asking: self-approval unseen.
        return "your token names no person (api.tokens[].person, your worker id): it cannot decide approvals"
    if approver.person == request.worker_id:
        return "nobody decides their own access"
    rule = request.rule
    if rule == "manager":
        manager = worker.manager_id if worker is not None else None
        if manager is None:
            return f"{request.worker_id} has no manager on record: nobody can approve by manager"
        if approver.person != manager:
            return f"only {request.worker_id}'s manager, {manager}, may decide (your token names {approver.person})"
        return None
    if rule.startswith("group:"):
        group = rule.removeprefix("group:")
        return None if group in approver.groups else f"only members of approver group {group!r} may decide"
    if rule.startswith("people:"):
        named = set(rule.removeprefix("people:").split(","))
        if approver.name in named or approver.person in named:
            return None
        return f"only {', '.join(sorted(named))} may decide"
    return f"the request names an approval rule this version does not know: {rule!r}"
