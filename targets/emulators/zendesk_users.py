"""A Zendesk Support users emulator (target side) over real HTTP.

`/api/v2/users…` as Zendesk documents it: answers wrapped in `{"user": …}` / `{"users": […]}`;
API-token auth as HTTP Basic `{email}/token:{token}`, or a bearer token from OAuth client
credentials at `/oauth/tokens`; cursor pagination (`page[size]`, `page[after]`, `meta.has_more`,
`links.next`); a taken email answers 422 `RecordInvalid`; deleting a user answers the user with
`active: false`; the rate limit answers 429 with `Retry-After`.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from provisioner.engine.kit.emulation import RateGate


@dataclass
class ZendeskState:
    email: str = "it-bot@example.com"
    api_token: str = "zendesk-test-token"
    client_id: str = "provisioner"
    client_secret: str = "zendesk-client-secret"
    token_lifetime: int = 7200
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # bearer token → expiry (monotonic)
    token_requests: int = 0
    gate: RateGate = field(default_factory=lambda: RateGate(rate=700 / 60, burst=20))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_app(state: ZendeskState) -> Starlette:
    ids = itertools.count(360_000_000_001)

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            return state.tokens.get(header[7:], 0) > time.monotonic()
        try:
            user, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            return False
        return header.startswith("Basic ") and user == f"{state.email}/token" and secret == state.api_token

    def guard(request: Request) -> JSONResponse | None:
        if not authorized(request):
            return JSONResponse({"error": "Couldn't authenticate you"}, status_code=401)
        if not state.gate.admit():
            return JSONResponse(
                {"error": "TooManyRequests", "description": "Rate limit exceeded"},
                status_code=429,
                headers={"Retry-After": "1"},
            )
        return None

    async def token(request: Request) -> JSONResponse:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            form = json.loads(raw or b"{}")
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        state.token_requests += 1
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != state.client_id
            or form.get("client_secret") != state.client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        value = secrets.token_hex(16)
        state.tokens[value] = time.monotonic() + state.token_lifetime
        return JSONResponse({"access_token": value, "token_type": "bearer", "expires_in": state.token_lifetime})

    async def users(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        if request.method == "POST":
            body = (await request.json()).get("user") or {}
            if not body.get("name"):
                return JSONResponse(
                    {
                        "error": "RecordInvalid",
                        "description": "Record validation errors",
                        "details": {"name": [{"description": "Name: cannot be blank"}]},
                    },
                    status_code=422,
                )
            email = str(body.get("email") or "").lower()
            if email and any(u["email"] == email for u in state.users.values()):
                return JSONResponse(
                    {
                        "error": "RecordInvalid",
                        "description": "Record validation errors",
                        "details": {
                            "email": [{"description": f"Email: {email} is already being used by another user"}]
                        },
                    },
                    status_code=422,
                )
            user = {
                "id": next(ids),
                "name": body["name"],
                "email": email or None,
                "role": body.get("role", "end-user"),
                "external_id": body.get("external_id"),
                "active": True,
                "suspended": False,
                "created_at": _now(),
                "updated_at": _now(),
            }
            state.users[user["id"]] = user
            return JSONResponse({"user": user}, status_code=201)
        size = min(int(request.query_params.get("page[size]", "100")), 100)
        after = int(request.query_params.get("page[after]", "0") or 0)
        ordered = [u for uid, u in sorted(state.users.items()) if uid > after and u["active"]]
        page, more = ordered[:size], len(ordered) > size
        base = str(request.url).split("?")[0]
        return JSONResponse(
            {
                "users": page,
                "meta": {"has_more": more, "after_cursor": str(page[-1]["id"]) if page else None},
                "links": {"next": f"{base}?page[size]={size}&page[after]={page[-1]['id']}" if more else None},
            }
        )

    async def search(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        query = request.query_params.get("query", "")
        email = query.removeprefix("email:").lower() if query.startswith("email:") else None
        found = [u for u in state.users.values() if u["active"] and (email is None or u["email"] == email)]
        return JSONResponse({"users": found, "count": len(found), "next_page": None, "previous_page": None})

    async def one(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        user = state.users.get(int(request.path_params["id"]))
        if user is None or not user["active"]:
            return JSONResponse({"error": "RecordNotFound", "description": "Not found"}, status_code=404)
        if request.method == "PUT":
            changes = (await request.json()).get("user") or {}
            user.update(
                {k: v for k, v in changes.items() if k in ("name", "email", "role", "external_id", "suspended")},
                updated_at=_now(),
            )
        elif request.method == "DELETE":
            user["active"] = False
        return JSONResponse({"user": user})

    return Starlette(
        routes=[
            Route("/oauth/tokens", token, methods=["POST"]),
            Route("/api/v2/users.json", users, methods=["GET", "POST"]),
            Route("/api/v2/users/search.json", search, methods=["GET"]),
            Route("/api/v2/users/{id:int}.json", one, methods=["GET", "PUT", "DELETE"]),
        ]
    )
