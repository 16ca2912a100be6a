"""A Lever emulator (ATS side): opportunities, applications, postings, offers and archive reasons
as `https://api.lever.co/v1` serves them, over real HTTP.

Facts: Lever's API documentation (https://hire.lever.co/developer/documentation). API key as the
Basic
username with a blank password, or OAuth bearer tokens that live an hour and refresh tokens that
rotate on every exchange; lists wrap `{"data": [...], "hasNext", "next"}` with an opaque offset
token; 10 requests/s with bursts of 20, else 429; errors `{"code", "message"}`; timestamps in epoch
ms; webhooks carry `token`, `triggeredAt` and `signature` = hex HMAC-SHA256(token + triggeredAt)
in the body. `/_admin/...` is for tests and the sandbox only.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from provisioner.engine.kit.emulation import RateGate
from provisioner.sources.emulation import Vendor, admin_routes, compact, fake_people, form_of
from provisioner.sources.webhooks import hmac_hex

HIRED_REASON = "a1b2c3d4-hired"
OTHER_REASONS = [("r-underqualified", "Underqualified"), ("r-withdrew", "Withdrew")]


def _ms(when: datetime | None = None) -> int:
    return int((when or datetime.now(UTC)).timestamp() * 1000)


@dataclass
class LeverState(Vendor):
    api_key: str = "lever-source-key"
    client_id: str = "lever-client"
    client_secret: str = "lever-secret"
    refresh_token: str = "lever-refresh-0"
    token_lifetime: int = 3600
    access_tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch s)
    expired_token_uses: int = 0  # requests that came with an expired or unknown access token
    opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    postings: dict[str, dict[str, Any]] = field(default_factory=dict)
    offers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    generation: int = 0  # bumping it voids every offset token handed out
    expire_next_cursor: bool = False  # the next follow-up page finds its token expired
    gate: RateGate = field(default_factory=lambda: RateGate(rate=10.0, burst=20))

    def seed(self, count: int, seed: int = 11) -> list[str]:
        return [self.hire(**person) for person in fake_people(count, seed)]

    def posting(self, title: str, department: str, location: str, commitment: str, team: str = "") -> str:
        for pid, p in self.postings.items():
            if (p["text"], p["categories"]["department"], p["categories"]["location"]) == (title, department, location):
                return pid
        pid = str(uuid.uuid4())
        self.postings[pid] = {
            "id": pid,
            "text": title,
            "state": "closed",
            "createdAt": _ms(),
            "updatedAt": _ms(),
            "categories": {
                "department": department,
                "team": team or department,
                "location": location,
                "commitment": commitment,
            },
        }
        return pid

    def hire(
        self,
        *,
        first_name: str,
        last_name: str,
        personal_email: str,
        department: str = "Engineering",
        title: str = "Software Engineer",
        location: str = "Berlin",
        commitment: str = "Full-time",
        start_date: str | None = None,
        archived: bool = True,
        **_: Any,
    ) -> str:
        with self.lock:
            oid, aid = str(uuid.uuid4()), str(uuid.uuid4())
            now = _ms()
            pid = self.posting(title, department, location, commitment)
            self.opportunities[oid] = {
                "id": oid,
                "name": f"{first_name} {last_name}",
                "contact": str(uuid.uuid4()),
                "headline": "",
                "stage": "offer",
                "emails": [personal_email],
                "phones": [],
                "location": location,
                "tags": [],
                "origin": "applied",
                "applications": [aid],
                "createdAt": now,
                "updatedAt": now,
                "archived": {"archivedAt": now, "reason": HIRED_REASON} if archived else None,
            }
            self.applications[aid] = {
                "id": aid,
                "type": "posting",
                "opportunityId": oid,
                "posting": pid,
                "createdAt": now,
            }
            fields = []
            if start_date:
                start = datetime.combine(date.fromisoformat(start_date), dtime(), UTC)
                fields.append(
                    {"text": "Anticipated start date", "identifier": "anticipated_start_date", "value": _ms(start)}
                )
            self.offers[oid] = [{"id": str(uuid.uuid4()), "createdAt": now, "status": "signed", "fields": fields}]
            return oid

    def change(self, oid: str, **changes: Any) -> None:
        """Admin edit: `start_date`, `name`, `emails`, or `archived_reason` (None unarchives)."""
        with self.lock:
            opp = self.opportunities[oid]
            if "start_date" in changes:
                value = changes.pop("start_date")
                for field_ in self.offers[oid][-1]["fields"]:
                    if field_["identifier"] == "anticipated_start_date":
                        field_["value"] = (
                            value
                            if not isinstance(value, str) or not value[:1].isdigit()
                            else _ms(datetime.combine(date.fromisoformat(value), dtime(), UTC))
                        )
            if "archived_reason" in changes:
                reason = changes.pop("archived_reason")
                opp["archived"] = {"archivedAt": _ms(), "reason": reason} if reason else None
            opp.update(changes)
            opp["updatedAt"] = _ms()

    def remove(self, oid: str) -> None:
        """The hire is undone: the opportunity is unarchived (back in the pipeline)."""
        self.change(oid, archived_reason=None)

    def webhook(self, event: str, oid: str) -> tuple[bytes, dict[str, str]]:
        """A delivery exactly as Lever signs it: the signature sits in the body."""
        token, triggered = secrets.token_hex(24), _ms()
        body = {
            "id": str(uuid.uuid4()),
            "event": event,
            "triggeredAt": triggered,
            "token": token,
            "signature": hmac_hex(self.webhook_secret, f"{token}{triggered}"),
            "data": {
                "opportunityId": oid,
                "candidateId": oid,
                "contactId": self.opportunities.get(oid, {}).get("contact"),
            },
        }
        return compact(body), {"User-Agent": "Lever-Webhooks"}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def list_page(request: Request, rows: list[dict[str, Any]], generation: int = 0) -> JSONResponse:
    """One page of a Lever list: `limit` 1–100, an opaque `offset` token, `{data, hasNext, next}`.
    A token from another `generation` is refused, as an expired one is. The users emulator
    (users_emulator.py, for the lever-users target) pages with this too."""
    q = request.query_params
    try:
        limit = int(q.get("limit", 100))
        if not 1 <= limit <= 100:
            raise ValueError
    except ValueError:
        return _error(400, "BadRequest", "limit must be between 1 and 100")
    start = 0
    if q.get("offset"):
        try:
            issued, start = json.loads(base64.urlsafe_b64decode(q["offset"] + "=" * (-len(q["offset"]) % 4)))
            if issued != generation:
                raise ValueError
        except ValueError:
            return _error(400, "BadRequest", "Invalid offset token")
    more = start + limit < len(rows)
    token = base64.urlsafe_b64encode(json.dumps([generation, start + limit]).encode()).decode().rstrip("=")
    return JSONResponse({"data": rows[start : start + limit], "hasNext": more, **({"next": token} if more else {})})


def create_app(state: LeverState) -> Starlette:
    def guard(request: Request) -> JSONResponse | None:
        if (refused := state.admit()) is not None:
            status, headers = refused
            code = "TooManyRequests" if status == 429 else "InternalServerError"
            return _error(status, code, "Rate limit exceeded" if status == 429 else "Server error", headers)
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            if state.access_tokens.get(value, 0) < time.time():
                state.expired_token_uses += 1
                return _error(401, "Unauthorized", "Invalid or expired access token")
            return forbidden(request)
        try:
            user = base64.b64decode(value).decode().partition(":")[0] if scheme.lower() == "basic" else ""
        except ValueError:
            user = ""
        if not secrets.compare_digest(user.encode(), state.api_key.encode()):
            return _error(401, "Unauthorized", "Invalid API key")
        return forbidden(request)

    def forbidden(request: Request) -> JSONResponse | None:
        if state.denied(request.url.path):
            return _error(403, "Forbidden", "The token is missing the scope this resource needs")
        return None

    def page(request: Request, rows: list[dict[str, Any]]) -> JSONResponse:
        if request.query_params.get("offset") and state.expire_next_cursor:
            state.expire_next_cursor, state.generation = False, state.generation + 1
        return list_page(request, rows, state.generation)

    async def archive_reasons(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        rows = [{"id": HIRED_REASON, "text": "Hired", "status": "active", "type": "hired"}] + [
            {"id": rid, "text": text, "status": "active", "type": "non-hired"} for rid, text in OTHER_REASONS
        ]
        wanted = request.query_params.get("type")
        return JSONResponse({"data": [r for r in rows if not wanted or r["type"] == wanted], "hasNext": False})

    async def opportunities(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        q = request.query_params
        rows = sorted(state.opportunities.values(), key=lambda o: (o["createdAt"], o["id"]))
        if q.get("archived") in ("true", "false"):
            rows = [o for o in rows if bool(o["archived"]) == (q["archived"] == "true")]
        if q.get("updated_at_start"):
            rows = [o for o in rows if o["updatedAt"] >= int(q["updated_at_start"])]
        return page(request, rows)

    async def opportunity(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        opp = state.opportunities.get(request.path_params["oid"])
        if opp is None:
            return _error(404, "ResourceNotFound", "Opportunity not found")
        return JSONResponse({"data": opp})

    def of_opportunity(rows: Callable[[str], list[dict[str, Any]]]) -> Callable[[Request], Awaitable[JSONResponse]]:
        """A list under /opportunities/{oid}/...: 404 for an unknown opportunity, else paged."""

        async def endpoint(request: Request) -> JSONResponse:
            if (denied := guard(request)) is not None:
                return denied
            oid = request.path_params["oid"]
            if oid not in state.opportunities:
                return _error(404, "ResourceNotFound", "Opportunity not found")
            return page(request, rows(oid))

        return endpoint

    applications = of_opportunity(lambda oid: [a for a in state.applications.values() if a["opportunityId"] == oid])
    offers = of_opportunity(lambda oid: state.offers.get(oid, []))

    async def posting(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        found = state.postings.get(request.path_params["pid"])
        return JSONResponse({"data": found}) if found else _error(404, "ResourceNotFound", "Posting not found")

    async def oauth_token(request: Request) -> JSONResponse:
        form = await form_of(request)
        if (form.get("client_id"), form.get("client_secret")) != (state.client_id, state.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != state.refresh_token:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        number = int(state.refresh_token.rsplit("-", 1)[1]) + 1
        state.refresh_token = f"lever-refresh-{number}"  # rotation: the old one is void from now on
        access = secrets.token_urlsafe(24)
        state.access_tokens[access] = time.time() + state.token_lifetime
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": state.token_lifetime,
                "refresh_token": state.refresh_token,
                "scope": "opportunities:read:admin offline_access",
            }
        )

    return Starlette(
        routes=[
            Route("/v1/archive_reasons", archive_reasons),
            Route("/v1/opportunities", opportunities),
            Route("/v1/opportunities/{oid}", opportunity),
            Route("/v1/opportunities/{oid}/applications", applications),
            Route("/v1/opportunities/{oid}/offers", offers),
            Route("/v1/postings/{pid}", posting),
            Route("/oauth/token", oauth_token, methods=["POST"]),
            *admin_routes(state, "candidateHired", "candidateStageChange"),
        ]
    )


State = LeverState  # the name the sandbox and tests look for in every vendor emulator


# What `provisioner sandbox` serves and prints for this vendor (engine/sandbox names no vendor).
SANDBOX_RANK = 3  # where its entry sits in the printed config


def sandbox_settings(url: str, state: LeverState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}/v1
    api_key: {state.api_key}
    webhook_secret: {state.webhook_secret}
"""
