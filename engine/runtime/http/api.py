"""`/api/v1`: JSON over the read models and operations, documented at `/api/v1/openapi.json`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from provisioner.engine.config import moment_or_age
from provisioner.engine.contracts.approvals import ApprovalRequest
from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.contracts.records import RESULT_TONE, LogEntry
from provisioner.engine.runtime import approvals, operations, views
from provisioner.engine.runtime.http.auth import NO_TOKEN, Auth
from provisioner.engine.runtime.http.identities import identity_routes
from provisioner.engine.runtime.protocol import Served


class RetryRequest(BaseModel):
    worker: str | None = None
    target: str | None = None
    all: bool = False


class Retried(BaseModel):
    retried: int


class Resumed(BaseModel):
    source: str
    resumed: bool
    message: str


class Polled(BaseModel):
    source: str
    seen: int
    events: int
    quarantined: int
    halted: str | None = None


class Provisioned(BaseModel):
    worker_id: str
    event_id: str


class Decision(BaseModel):
    reason: str | None = None


APPROVALS = "approvals"  # the tag of the routes any named approver may use


def api_app(served: Served, auth: Auth) -> FastAPI:
    def authorized(request: Request) -> None:
        if not auth.enabled:
            raise HTTPException(403, NO_TOKEN)
        principal = auth.bearer(request)
        if principal is None:
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        route = request.scope.get("route")
        if not principal.operator and APPROVALS not in getattr(route, "tags", ()):
            raise HTTPException(403, f"{principal.shown} may use /approvals only (give it the operator role)")
        request.state.principal = principal

    api = FastAPI(
        title="provisioner",
        version="1",
        description="The engine's operations API. Every call needs `Authorization: Bearer <token>`: the shared "
        "api.token, or a named token of api.tokens (approvals are decided only with a named approver's token).",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(authorized)],
    )
    config, store = served.config, served.store

    @api.exception_handler(RequestValidationError)
    async def unreadable(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A body that is not JSON at all is a 400; a JSON body of the wrong shape stays a 422.
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            return JSONResponse({"detail": "the body is not valid JSON"}, status_code=400)
        return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    def known_source(name: str) -> None:
        if name not in served.parts.sources:
            raise HTTPException(404, f"no source {name!r}")

    @api.get("/status", response_model=views.Status)
    def status() -> views.Status:
        """The same content as `provisioner status --json`."""
        return views.status(config, store)

    @api.get("/sources", response_model=list[views.SourceView])
    def sources() -> list[views.SourceView]:
        return views.sources(config, store)

    @api.get("/targets", response_model=list[views.TargetView])
    def targets() -> list[views.TargetView]:
        return views.targets(config, store)

    @api.get("/workers", response_model=list[views.WorkerSummary])
    def workers(
        q: Annotated[str, Query(description="part of an id, a name or an email")] = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[views.WorkerSummary]:
        return views.workers(store, q, limit)

    @api.get("/workers/{worker_id}")
    def worker(worker_id: str) -> dict[str, Any]:
        """What `provisioner explain` shows: accounts per target, the policies that matched and why,
        links, recent log, open failures."""
        try:
            return views.worker_detail(served.parts, worker_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:  # a policy that cannot be evaluated for this person
            raise HTTPException(422, str(exc)) from None

    @api.post("/workers/{worker_id}/provision", response_model=Provisioned, status_code=202)
    def provision(worker_id: str) -> Provisioned:
        """Re-plan this person now from their stored record, through the outbox."""
        try:
            event_id = operations.provision_now(store, worker_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        served.wake()
        return Provisioned(worker_id=worker_id, event_id=event_id)

    @api.get("/log", response_model=list[LogEntry])
    def log(
        worker: str | None = None,
        target: str | None = None,
        result: Annotated[str | None, Query(pattern=f"^({'|'.join(RESULT_TONE)})$")] = None,
        since: Annotated[str | None, Query(description="an ISO time or an age: 90m, 2h, 7d")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[LogEntry]:
        """The provisioning log, newest last; the filters of `provisioner log`."""
        try:
            when = moment_or_age(since) if since else None
        except ValueError as exc:
            raise HTTPException(422, f"since {exc}") from None
        return views.log_entries(store, worker, target, result, when, limit)

    @api.get("/failures")
    def failures() -> list[dict[str, Any]]:
        """Failed actions, retrying or dead."""
        return views.failures(store)

    @api.post("/failures/retry", response_model=Retried)
    def retry(body: RetryRequest) -> Retried:
        """Re-apply failures of one worker, one target, or all (as `provisioner retry`)."""
        try:
            retried = operations.retry(store, body.worker, body.target, body.all)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        served.wake()
        return Retried(retried=retried)

    @api.get("/quarantine")
    def quarantine(source: str | None = None) -> list[dict[str, Any]]:
        """Records each source's latest poll held back as bad input: source, record id or line, reason."""
        try:
            return views.quarantine(served.config, store, source)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None

    @api.post("/sources/{name}/resume", response_model=Resumed)
    def resume(name: str) -> Resumed:
        """Lift a safety halt (as `provisioner resume`): the next poll applies the held deprovisions."""
        known_source(name)
        resumed = operations.resume(config, store, name)
        message = "the next poll applies its deprovisions" if resumed else "it was not halted"
        return Resumed(source=name, resumed=resumed, message=message)

    @api.post("/sources/{name}/poll", response_model=Polled)
    async def poll(name: str) -> Polled:
        """Poll this source now; answers when the poll is committed."""
        known_source(name)
        try:
            diff = await served.poll(name)
        except SourceError as exc:
            raise HTTPException(502, str(exc)) from None
        return Polled(
            source=name, seen=diff.seen, events=diff.event_count, quarantined=len(diff.quarantined), halted=diff.halted
        )

    @api.get("/plan")
    async def plan(worker: str) -> dict[str, Any]:
        """Dry run for one person: the actions a sync would take now. Changes nothing."""
        try:
            return await operations.plan_worker(served.parts, worker)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @api.get("/approvals", tags=[APPROVALS], response_model=list[ApprovalRequest])
    def approvals_list(
        state: Annotated[
            str | None, Query(description="pending (default), approved, denied, expired, void or all")
        ] = "pending",
        worker: str | None = None,
        kind: Annotated[str | None, Query(description="grant, provision, retry or access (default: any)")] = None,
    ) -> list[dict[str, Any]]:
        """Approval requests, oldest first: what `provisioner approvals list --json` prints."""
        try:
            return approvals.listing(store, state or "pending", worker, kind)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    @api.post("/approvals/{request_id}/{verdict}", tags=[APPROVALS], response_model=ApprovalRequest)
    def approvals_decide(
        request_id: str, verdict: str, request: Request, body: Decision | None = None
    ) -> ApprovalRequest:
        """Approve or deny a pending request (`verdict`: approve | deny), as the named approver whose
        token this is; an approval is applied within one cycle."""
        if verdict not in ("approve", "deny"):
            raise HTTPException(404, "approve or deny")
        approver = request.state.principal.approver
        if approver is None:
            raise HTTPException(
                403,
                approvals.SHARED_TOKEN_CANNOT
                if request.state.principal.name is None
                else f"{request.state.principal.name} lacks the approver role",
            )
        try:
            decided = approvals.decide(store, request_id, approver, verdict == "approve", body.reason if body else None)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except approvals.Refused as exc:
            raise HTTPException(403, str(exc)) from None
        except approvals.NotDecidable as exc:
            raise HTTPException(409, str(exc)) from None
        served.wake()
        return decided

    @api.get("/reconcile/latest")
    def reconcile_latest() -> dict[str, Any]:
        """The last reconciliation's report: counts per target and situation, and what needs attention."""
        report = views.reconcile_latest(store)
        if report is None:
            raise HTTPException(404, "no reconciliation has run yet")
        return report

    api.include_router(identity_routes(served))
    return api
