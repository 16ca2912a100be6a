"""A Lever users emulator (target side): `/users` as the Lever v1 API serves it, over real HTTP.

Facts from Lever's API documentation (https://hire.lever.co/developer/documentation): API key as the
HTTP Basic username with a blank
password; lists page with an opaque offset token (`hasNext`, `next`); users are listed, created,
deactivated and reactivated. Answers are wrapped in `{"data": …}`. The rate limit (10 requests/s,
bursts of 20) answers 429 with `Retry-After`; `/_admin/storm` forces a burst of 429s, and
`/_admin/log` tells tests when each accepted request arrived, to prove none exceeded the limit.
Where the guide is silent (updating a user, a duplicate email) we follow Lever's public
reference: `PUT /users/{id}` updates, a duplicate email answers 409 — and say so here.
"""

from __future__ import annotations

import base64
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from provisioner.engine.kit.emulation import RateGate
from provisioner.sources.lever.emulator import list_page

ROLES = {"super admin", "admin", "team member", "limited team member", "interviewer"}


@dataclass
class LeverUsersState:
    api_key: str = "lever-test-key"
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate: RateGate = field(default_factory=lambda: RateGate(rate=10.0, burst=20))


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def create_app(state: LeverUsersState) -> Starlette:
    ids = itertools.count(1)

    def guard(request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        try:
            user, _, _ = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            user = ""
        if not header.startswith("Basic ") or user != state.api_key:
            return _error(401, "Unauthorized", "Invalid API key")
        if not state.gate.admit():
            return _error(429, "TooManyRequests", "Rate limit exceeded", {"Retry-After": "1"})
        return None

    async def list_users(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        q = request.query_params
        users = sorted(state.users.values(), key=lambda u: u["createdAt"])
        if q.get("includeDeactivated") != "true":
            users = [u for u in users if u["deactivatedAt"] is None]
        if q.get("email"):
            users = [u for u in users if u["email"].lower() == q["email"].lower()]
        return list_page(request, users)

    async def create_user(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        body = await request.json()
        if not body.get("name") or not body.get("email"):
            return _error(400, "BadRequest", "name and email are required")
        if body.get("accessRole", "interviewer") not in ROLES:
            return _error(400, "BadRequest", f"accessRole must be one of {sorted(ROLES)}")
        if any(u["email"].lower() == body["email"].lower() for u in state.users.values()):
            return _error(409, "Conflict", "A user with this email already exists")
        user = {
            "id": str(uuid.UUID(int=next(ids))),
            "name": body["name"],
            "username": body["email"].split("@")[0],
            "email": body["email"],
            "accessRole": body.get("accessRole", "interviewer"),
            "externalDirectoryId": body.get("externalDirectoryId"),
            "createdAt": int(time.time() * 1000),
            "deactivatedAt": None,
            "photo": None,
            "linkedContactIds": [],
        }
        state.users[user["id"]] = user
        return JSONResponse({"data": user}, status_code=201)

    async def one_user(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        user = state.users.get(request.path_params["id"])
        if user is None:
            return _error(404, "NotFound", "User not found")
        if request.method == "PUT":
            body = await request.json()
            user.update({k: body[k] for k in ("name", "email", "accessRole", "externalDirectoryId") if k in body})
        return JSONResponse({"data": user})

    async def set_active(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        user = state.users.get(request.path_params["id"])
        if user is None or request.path_params["verb"] not in ("deactivate", "reactivate"):
            return _error(404, "NotFound", "User not found")
        active = request.path_params["verb"] == "reactivate"
        user["deactivatedAt"] = None if active else int(time.time() * 1000)
        return JSONResponse({"data": user})

    async def admin_storm(request: Request) -> JSONResponse:
        state.gate.storm = int((await request.json()).get("count", 10))
        return JSONResponse({"storm": state.gate.storm})

    async def admin_log(request: Request) -> JSONResponse:
        return JSONResponse({"accepted": state.gate.accepted, "rejected": state.gate.rejected})

    return Starlette(
        routes=[
            Route("/users", list_users, methods=["GET"]),
            Route("/users", create_user, methods=["POST"]),
            Route("/users/{id}", one_user, methods=["GET", "PUT"]),
            Route("/users/{id}/{verb:str}", set_active, methods=["POST"]),
            Route("/_admin/storm", admin_storm, methods=["POST"]),
            Route("/_admin/log", admin_log, methods=["GET"]),
        ]
    )
