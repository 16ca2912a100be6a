"""Who may decide an approval request: the rule its grant named, the approver, the person it is
about and the one who asked; and the same rule said in words for whoever asks.

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
    # A person's agent asks with its own token: a token naming the same person is them asking.
    if request.requested_by is not None and request.requested_by in (approver.name, approver.person, *approver.tokens):
        return "nobody decides their own request"
    rule = request.rule
    if rule == "manager":
        manager = worker.manager_id if worker is not None else None
        if manager is None:
            return f"{request.worker_id or 'nobody'} has no manager on record: nobody can approve by manager"
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


def approvers(rule: str, worker: Worker | None) -> str:
    """Who may decide under `rule` (manager | group:<name> | people:a,b), in words: "hr:7, manager
    of hr:42". ValueError when nobody can (a person with no manager on record)."""
    if rule == "manager":
        if worker is None or worker.manager_id is None:
            whose = worker.id if worker is not None else "a request about no one person"
            raise ValueError(
                f"{whose} has no manager on record to approve it: "
                "set approvals.requests.by to group:<name> or people:[…]"
            )
        return f"{worker.manager_id}, manager of {worker.id}"
    if rule.startswith("group:"):
        return f"a member of approver group {rule.removeprefix('group:')}"
    return " or ".join(rule.removeprefix("people:").split(","))
