"""Deciding approval requests, the one way the API, the console and the CLI do it: who is asking
(a named token with the approver role), whether they may, the decision and its log row in one
unit of work, and, on a yes, what was asked done through the outbox (applied within one cycle):
the person re-planned (a grant, access, provision now) or their failed writes retried."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from provisioner.engine.config import ApiToken, Config
from provisioner.engine.contracts.approvals import ApprovalRequest, ApprovalState, Approver, RequestKind
from provisioner.engine.contracts.events import APPROVAL_SOURCE, internal_event
from provisioner.engine.kit import tracing
from provisioner.engine.runtime import operations
from provisioner.engine.store import Store
from provisioner.engine.store.approvals import entry
from provisioner.rules.approvals import refusal

SHARED_TOKEN_CANNOT = "the shared api.token names nobody, so it cannot decide approvals: use a named token (api.tokens)"


class Refused(PermissionError):
    """This approver may not decide this request (a 403)."""


class NotDecidable(ValueError):
    """The request cannot be decided as asked: decided already, expired, or a reason is missing (a 409)."""


def named_token(config: Config, presented: str) -> ApiToken | None:
    """The named token presented, compared in constant time with each; None for any other."""
    found = None
    for token in config.api.tokens:
        if hmac.compare_digest(presented.encode(), token.token.get_secret_value().encode()):
            found = token
    return found


def cannot_decide(config: Config, presented: str) -> str:
    """Why the token presented decides nothing (it is not an approver's), in the words every
    surface uses."""
    named = named_token(config, presented)
    if named is not None:
        return f"{named.name} lacks the approver role"
    shared = config.api.token
    if shared is not None and hmac.compare_digest(presented.encode(), shared.get_secret_value().encode()):
        return SHARED_TOKEN_CANNOT
    return "this token is not one of api.tokens: use your own named token (api.tokens)"


def approver_of(config: Config, token: ApiToken) -> Approver | None:
    """The approver a named token speaks for, with every token naming the same person; None when it
    lacks the approver role."""
    if "approver" not in token.roles:
        return None
    same = [t.name for t in config.api.tokens if token.person is not None and t.person == token.person]
    return Approver(name=token.name, person=token.person, groups=list(token.groups), tokens=same)


def decide(
    store: Store, request_id: str, approver: Approver, approve: bool, reason: str | None = None
) -> ApprovalRequest:
    """Approve or deny a pending request as `approver`. Raises LookupError (no such request),
    Refused (not theirs to decide) or NotDecidable (decided, expired, or a required reason missing)."""
    now = datetime.now(UTC)
    request = store.approvals.get(request_id)
    if request is None:
        raise LookupError(f"no approval request {request_id!r}")
    if request.state is not ApprovalState.pending:
        raise NotDecidable(f"request {request_id} is {request.state.value} already")
    if request.expires_at <= now:
        raise NotDecidable(f"request {request_id} expired at {request.expires_at.isoformat(timespec='seconds')}")
    worker = store.snapshots.get(request.worker_id) if request.worker_id else None
    why_not = refusal(request, approver, worker)
    if why_not is not None:
        raise Refused(why_not)
    reason = (reason or "").strip() or None
    if request.reason_required and reason is None:
        raise NotDecidable("this grant needs a reason with the decision")
    state = ApprovalState.approved if approve else ApprovalState.denied
    # A trace of its own, whichever surface decided (console, CLI, API, an agent's request): the
    # change it sets off carries it, so the person page names this trace for what follows.
    about = {"provisioner.approval_id": request_id, "provisioner.request_kind": request.kind.value}
    with tracing.root(f"approval {state.value}", about):
        with store.unit() as s:
            decided = store.approvals.decide(s, request_id, state, approver.name, reason, now)
            if decided is None:
                raise NotDecidable(f"request {request_id} was decided meanwhile")
            said = f"{state.value} by {approver.name}" + (f": {reason}" if reason else "")
            store.log.append([entry(decided, f"approval_{state.value}", "success", said)], s)
            if approve and request.kind in (RequestKind.grant, RequestKind.access) and request.worker_id:
                # Re-planned from the snapshot like any change: the grant is written within one cycle.
                store.outbox.enqueue(s, [internal_event(APPROVAL_SOURCE, request.worker_id, worker, request_id)])
        if approve:  # after the decision is kept (see _run)
            _run(store, decided)
    return decided


def _run(store: Store, request: ApprovalRequest) -> None:
    """What a provision-now or retry request asks, once approved: through the outbox, as the
    operator's own command does it. Done after the decision is kept, so a failure here (the person
    gone from the store, the failures retried meanwhile) is logged against the request."""
    try:
        if request.kind is RequestKind.provision and request.worker_id:
            operations.provision_now(store, request.worker_id)
        elif request.kind is RequestKind.retry:
            if not operations.retry(store, request.worker_id, request.target):
                raise LookupError("no failed write matches any more (retried or healed meanwhile)")
        else:
            return
    except LookupError as exc:
        store.log.append([entry(request, "request_not_run", "skipped", str(exc))])


def listing(
    store: Store, state: str = "pending", worker: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    """Requests as the API, the console and `provisioner approvals list --json` show them (the same
    JSON); `state` is one of ApprovalState or "all", `kind` one of RequestKind (None: any)."""
    if state != "all" and state not in ApprovalState.__members__:
        raise ValueError(f"state must be one of {', '.join(ApprovalState.__members__)} or all")
    if kind is not None and kind not in RequestKind.__members__:
        raise ValueError(f"kind must be one of {', '.join(RequestKind.__members__)}")
    chosen = store.approvals.list(None if state == "all" else state, worker, kind=kind)
    return [r.model_dump(mode="json") for r in chosen]
