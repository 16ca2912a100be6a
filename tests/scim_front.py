"""A small ASGI front for a real SCIM server, to give it the habits of other apps: an auth scheme
(Basic, OAuth 2.0 client credentials with its own token endpoint), refusing some PATCHes with 501
as django-scim2 does, dropping attributes it does not store, or a search index that lags.

Every request the front lets through is forwarded to the server behind it, unchanged apart from
the upstream's own credentials, so what comes back is the real server's answer.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# (method, path, parsed JSON body or None) → an answer instead of the server's, or None to forward
Intercept = Callable[[str, str, Any, Request], Response | None]
# (method, path, parsed JSON body) → the body to forward, or to answer with, instead
Rewrite = Callable[[str, str, Any], Any]


@dataclass
class Front:
    upstream: str
    upstream_token: str | None = None
    basic: tuple[str, str] | None = None  # accept these Basic credentials
    client: tuple[str, str] | None = None  # accept OAuth client credentials at /oauth/token
    intercept: Intercept | None = None
    rewrite_request: Rewrite | None = None  # what the app makes of a request before it reaches the server
    rewrite_answer: Rewrite | None = None  # what the app shows of the server's JSON answer
    drop: set[str] = field(default_factory=set)  # top-level attributes the app does not store
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status) answered
    tokens: set[str] = field(default_factory=set)

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if self.basic is not None:
            expected = base64.b64encode(":".join(self.basic).encode()).decode()
            return header == f"Basic {expected}"
        if self.client is not None:
            return header.removeprefix("Bearer ") in self.tokens
        return True

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}  # no python-multipart
        pair = (str(form.get("client_id")), str(form.get("client_secret")))
        if form.get("grant_type") != "client_credentials" or pair != self.client:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued = secrets.token_urlsafe(16)
        self.tokens.add(issued)
        return JSONResponse({"access_token": issued, "token_type": "Bearer", "expires_in": 3600})

    async def forward(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        if not self.authorized(request):
            body = {"schemas": [ERROR], "status": "401", "detail": "credentials refused"}
            return self._answer(request, path, JSONResponse(body, status_code=401))
        raw = await request.body()
        parsed = json.loads(raw) if raw else None
        if self.intercept is not None and (own := self.intercept(request.method, path, parsed, request)):
            return self._answer(request, path, own)
        if self.rewrite_request is not None and parsed is not None:
            parsed = self.rewrite_request(request.method, path, parsed)
            raw = json.dumps(parsed).encode()
        if self.drop and isinstance(parsed, dict) and request.method in ("POST", "PUT"):
            raw = json.dumps({k: v for k, v in parsed.items() if k not in self.drop}).encode()
        elif self.drop and isinstance(parsed, dict) and request.method == "PATCH":
            kept = [op for op in parsed.get("Operations", []) if str(op.get("path", "")).split(".")[0] not in self.drop]
            raw = json.dumps({**parsed, "Operations": kept}).encode()
        headers = {"Content-Type": request.headers.get("content-type", "application/scim+json")}
        if self.upstream_token:
            headers["Authorization"] = f"Bearer {self.upstream_token}"
        if "if-match" in request.headers:
            headers["If-Match"] = request.headers["if-match"]
        async with httpx.AsyncClient(base_url=self.upstream, timeout=30) as client:
            params = request.query_params
            answer = await client.request(request.method, path, params=params, content=raw, headers=headers)
        excluded = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        kept_headers = {k: v for k, v in answer.headers.items() if k.lower() not in excluded}
        content = answer.content
        if self.rewrite_answer is not None and content and answer.status_code < 300:
            content = json.dumps(self.rewrite_answer(request.method, path, answer.json())).encode()
        return self._answer(request, path, Response(content, answer.status_code, kept_headers))

    def _answer(self, request: Request, path: str, response: Response) -> Response:
        self.seen.append((request.method, path, response.status_code))
        return response

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/{path:path}", self.forward, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            ]
        )


def scim_error(status: int, detail: str, scim_type: str | None = None) -> JSONResponse:
    body = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return JSONResponse(body, status_code=status, media_type="application/scim+json")


def empty_list() -> JSONResponse:
    return JSONResponse({"schemas": [LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
