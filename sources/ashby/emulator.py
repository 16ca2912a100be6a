"""An Ashby emulator: applications, candidates, offers, jobs, departments and locations as
`https://api.ashbyhq.com` serves them, over real HTTP.

Facts, from Ashby's developer documentation:
- RPC style, `POST /<category>.<method>` with a JSON body, Basic auth with the API key as username
  and a blank password; no key is a 401, a wrong or deactivated key a 403, a key without the
  module's permission a 403 `missing_endpoint_permission`
  (https://developers.ashbyhq.com/reference/introduction, https://developers.ashbyhq.com/reference/authentication).
- What would be a 4xx is HTTP 200 `{"success": false, "errors": [...], "errorInfo": {"code",
  "message", "requestId"}}`; a malformed payload is `invalid_input` (https://developers.ashbyhq.com/docs/responses).
- Lists take `limit` (results capped at 100) and `cursor`, answer `{success, results,
  moreDataAvailable, nextCursor}`; the last page of a listing carries a `syncToken`; passing it
  back lists only what changed since; an expired token is `sync_token_expired`
  (https://developers.ashbyhq.com/docs/pagination-and-incremental-sync). `application.list` filters
  by `status` (Hired, Archived, Active, Lead), `offer.list` by `applicationId`.
- Objects as the API reference gives them: an application embeds its candidate, current stage and
  job (`{id, title, locationId, departmentId}`); a job's `employmentType` is FullTime, PartTime,
  Intern, Contract or Temporary; an offer has `acceptanceStatus` and a `latestVersion.startDate`.
- Webhooks `{"action", "data"}` signed `Ashby-Signature: sha256=<hex>` (HMAC-SHA256 of the raw
  body) (https://developers.ashbyhq.com/docs/authenticating-webhooks); `candidateHire` carries the
  application and the offer.
- Over the limit is HTTP 429 with `Retry-After` and `errorInfo.code` `rate_limit_exceeded` (the code
  Ashby's report endpoints document). Ashby publishes no per-key rate: `gate` is a stand-in.
Not documented, so invented here: the error codes of the 401/403 credential answers, and how long
a syncToken lives (`token_ttl`; `expire_sync_tokens()` voids every token at once).
`/_admin/...` is for tests and the sandbox only.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from provisioner.engine.kit.emulation import RateGate
from provisioner.sources.ashby.fixtures import AshbyData
from provisioner.sources.emulation import admin_routes, compact, fake_people
from provisioner.sources.webhooks import hmac_hex

PAGE_MAX = 100
PERMISSION = "missing_endpoint_permission"


@dataclass
class AshbyState(AshbyData):
    api_key: str = "ashby-api-key"
    gate: RateGate = field(default_factory=lambda: RateGate(rate=10.0, burst=20))
    sync_epoch: int = 0  # bumping it expires every syncToken handed out
    token_ttl: float | None = None  # seconds a syncToken lives; None: until expired by hand
    expire_mid_listing: bool = False  # the next follow-up page of a change feed finds its token expired
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def seed(self, count: int, seed: int = 19) -> list[str]:
        return [self.hire(**person) for person in fake_people(count, seed)]

    def expire_sync_tokens(self) -> None:
        self.sync_epoch += 1

    def webhook(self, action: str, aid: str) -> tuple[bytes, dict[str, str]]:
        """A delivery as Ashby sends it: `candidateHire` with the application and its offer."""
        data: dict[str, Any] = {"application": self.applications[aid]}
        if action == "candidateHire":
            data["offer"] = next(reversed(self.offers.get(aid) or []), None)
        body = compact({"action": action, "data": data})
        return body, {"Ashby-Signature": f"sha256={hmac_hex(self.webhook_secret, body)}"}

    # --- sync tokens and cursors (opaque to clients) -------------------------------------------
    def token(self, seq: int) -> str:
        return _pack([self.sync_epoch, seq, time.time()])

    def token_seq(self, token: str) -> int | None:
        """The change number a syncToken stands for, or None when it expired."""
        try:
            epoch, seq, issued = _unpack(token)
        except ValueError:
            return None
        if epoch != self.sync_epoch or (self.token_ttl is not None and time.time() - issued > self.token_ttl):
            return None
        return int(seq)


def _pack(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _unpack(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        raise ValueError("not a token")
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a token") from exc


def failure(code: str, message: str, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"success": False, "errors": [code], "errorInfo": {"code": code, "message": message, "requestId": _rid()}}
    return JSONResponse(body, status_code=status, headers=headers)


def _rid() -> str:
    return uuid.uuid4().hex[:26].upper()


def create_app(state: AshbyState) -> Starlette:
    def guard(request: Request) -> JSONResponse | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not value:
            return failure("unauthenticated", "Missing API key: send it as the Basic auth username", 401)
        try:
            user = base64.b64decode(value).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            user = ""
        if not secrets.compare_digest(user.encode(), state.api_key.encode()):
            return failure("invalid_api_key", "The API key is invalid or has been deactivated", 403)
        if state.denied(request.url.path):
            return failure(PERMISSION, "The API key lacks the permission this endpoint needs", 403)
        if (status := state.faults.take()) is not None:
            return failure("internal_error", "Internal server error", status)
        if not state.gate.admit():
            headers = state.gate.headers()
            return failure("rate_limit_exceeded", "Rate limit exceeded", 429, headers)
        return None

    async def rpc(request: Request) -> JSONResponse:
        if (refused := guard(request)) is not None:
            return refused
        endpoint = request.path_params["endpoint"]
        handler = HANDLERS.get(endpoint)
        if handler is None:
            return failure("endpoint_not_found", f"No endpoint named {endpoint}", 404)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or "json" not in request.headers.get("content-type", ""):
            return failure("invalid_input", "Request payload is malformed")
        with state.lock:
            return handler(state, body)

    return Starlette(
        routes=[
            Route("/{endpoint}", rpc, methods=["POST"]),
            *admin_routes(state, "candidateHire", "applicationUpdate"),
        ]
    )


def listing(state: AshbyState, body: dict[str, Any], rows: list[tuple[int, dict[str, Any]]]) -> JSONResponse:
    """One page of a list endpoint over (change number, object) rows."""
    limit = body.get("limit", PAGE_MAX)
    if not isinstance(limit, int) or limit < 1:
        return failure("invalid_input", "limit must be a positive integer")
    limit = min(limit, PAGE_MAX)  # "automatically capped by the API"
    since = 0
    if body.get("syncToken") is not None and body.get("cursor") and state.expire_mid_listing:
        state.expire_mid_listing = False
        state.expire_sync_tokens()
    if body.get("syncToken") is not None:
        found = state.token_seq(body["syncToken"])
        if found is None:
            return failure("sync_token_expired", "The sync token has expired; perform a full sync")
        since = found
    start, top = 0, state.seq
    if body.get("cursor"):
        try:
            start, top, since = _unpack(body["cursor"])
        except (ValueError, TypeError):
            return failure("invalid_cursor", "The cursor is invalid")
    # What changed after the token, up to the change number the listing started at.
    chosen = [obj for seq, obj in rows if since < seq <= top]
    chunk, more = chosen[start : start + limit], start + limit < len(chosen)
    answer: dict[str, Any] = {"success": True, "results": chunk, "moreDataAvailable": more}
    if more:
        answer["nextCursor"] = _pack([start + limit, top, since])
    else:
        answer["syncToken"] = state.token(top)
    return JSONResponse(answer)


def _applications(state: AshbyState, body: dict[str, Any]) -> JSONResponse:
    rows = [(state.seqs[aid], a) for aid, a in state.applications.items()]
    if body.get("status"):
        rows = [(s, a) for s, a in rows if a["status"] == body["status"]]
    if body.get("jobId"):
        rows = [(s, a) for s, a in rows if a["job"]["id"] == body["jobId"]]
    return listing(state, body, rows)


def _offers(state: AshbyState, body: dict[str, Any]) -> JSONResponse:
    wanted = body.get("applicationId")
    rows = [(state.seqs[aid], o) for aid, offers in state.offers.items() for o in offers if wanted in (None, aid)]
    return listing(state, body, rows)


def _info(kind: str, key: str) -> Any:
    def handler(state: AshbyState, body: dict[str, Any]) -> JSONResponse:
        if not isinstance(body.get(key), str):
            return failure("invalid_input", f"{key} is required")
        found = getattr(state, f"{kind}s").get(body[key])
        if found is None:
            return failure(f"{kind}_not_found", f"{kind.capitalize()} not found")
        return JSONResponse({"success": True, "results": found})

    return handler


def _users(state: AshbyState, body: dict[str, Any]) -> JSONResponse:
    return listing(state, body, [(1, u) for u in state.users.values()])


HANDLERS = {
    "application.list": _applications,
    "application.info": _info("application", "applicationId"),
    "candidate.info": _info("candidate", "id"),
    "offer.list": _offers,
    "job.info": _info("job", "id"),
    "department.info": _info("department", "departmentId"),
    "location.info": _info("location", "locationId"),
    "user.list": _users,
}

State = AshbyState  # the name the sandbox and tests look for in every vendor emulator


# What `provisioner sandbox` serves and prints for this vendor (engine/sandbox names no vendor).
SANDBOX_RANK = 6  # where its entry sits in the printed config


def sandbox_settings(url: str, state: AshbyState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}
    api_key: {state.api_key}
    webhook_secret: {state.webhook_secret}
"""
