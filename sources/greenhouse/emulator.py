"""A Greenhouse Harvest emulator: applications, candidates, offers and jobs under `/v1` (Basic,
API token as username, page-numbered `Link` headers) and `/v3` (OAuth client-credentials bearer
tokens from `/token`, opaque cursors that must be the only query parameter on follow-ups).

Facts: Greenhouse's Harvest API documentation (https://developers.greenhouse.io/harvest.html). Limit
reported in `X-RateLimit-Limit` /
`-Remaining` per 10 s window; a 429 carries `X-RateLimit-Reset` and `Retry-After`. Errors are
`{"message": ...}`. Webhooks: `Signature: sha256 <hex>` over the whole raw body, plus
`Greenhouse-Event-ID`. The v3 sub-resource paths mirror v1's (not confirmed by the facts file).
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.engine.kit.emulation import WindowGate
from provisioner.sources.emulation import Vendor, admin_routes, after, compact, fake_people, form_of, iso_now
from provisioner.sources.webhooks import hmac_hex


@dataclass
class GreenhouseState(Vendor):
    api_key: str = "greenhouse-harvest-key"
    client_id: str = "gh-client"
    client_secret: str = "gh-secret"
    tokens: dict[str, float] = field(default_factory=dict)
    applications: dict[int, dict[str, Any]] = field(default_factory=dict)
    candidates: dict[int, dict[str, Any]] = field(default_factory=dict)
    offers: dict[int, dict[str, Any]] = field(default_factory=dict)  # by application id
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    gate: WindowGate = field(default_factory=lambda: WindowGate(count=50, window=10.0, prefix="X-RateLimit"))
    cursor_secret: str = field(default_factory=lambda: secrets.token_hex(4))  # rotating it expires cursors
    _ids: itertools.count = field(default_factory=lambda: itertools.count(4000))

    def seed(self, count: int, seed: int = 17) -> list[str]:
        return [self.hire(**person) for person in fake_people(count, seed)]

    def job(self, title: str, department: str, city: str, commitment: str) -> int:
        for jid, job in self.jobs.items():
            if (job["name"], job["departments"][0]["name"], job["offices"][0]["name"]) == (title, department, city):
                return jid
        jid = next(self._ids)
        self.jobs[jid] = {
            "id": jid,
            "name": title,
            "status": "open",
            "departments": [{"id": jid, "name": department}],
            "offices": [{"id": jid, "name": city, "location": {"name": city}}],
            "custom_fields": {"employment_type": commitment},
        }
        return jid

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
        **_: Any,
    ) -> str:
        with self.lock:
            cid, aid = next(self._ids), next(self._ids)
            jid = self.job(title, department, location, commitment)
            self.candidates[cid] = {
                "id": cid,
                "first_name": first_name,
                "last_name": last_name,
                "company": None,
                "title": None,
                "created_at": iso_now(),
                "updated_at": iso_now(),
                "last_activity": iso_now(),
                "is_private": False,
                "application_ids": [aid],
                "email_addresses": [{"value": personal_email, "type": "personal"}],
                "custom_fields": {},
                "keyed_custom_fields": {},
            }
            self.applications[aid] = {
                "id": aid,
                "candidate_id": cid,
                "prospect": False,
                "applied_at": iso_now(),
                "rejected_at": None,
                "last_activity_at": iso_now(),
                "status": "hired",
                "current_stage": None,
                "jobs": [{"id": jid, "name": title}],
                "rejection_reason": None,
            }
            self.offers[aid] = {
                "id": next(self._ids),
                "version": 1,
                "application_id": aid,
                "job_id": jid,
                "candidate_id": cid,
                "created_at": iso_now(),
                "updated_at": iso_now(),
                "status": "accepted",
                "starts_at": start_date,
                "custom_fields": {"employment_type": commitment},
            }
            return str(cid)

    def _touch(self, cid: int) -> None:
        for aid in self.candidates[cid]["application_ids"]:
            self.applications[aid]["last_activity_at"] = iso_now()
        self.candidates[cid]["updated_at"] = iso_now()

    def change(self, cid: str, **changes: Any) -> None:
        """Admin edit: `start_date` (on the current offer) or candidate fields."""
        with self.lock:
            candidate = self.candidates[int(cid)]
            if "start_date" in changes:
                for aid in candidate["application_ids"]:
                    self.offers[aid].update(starts_at=changes["start_date"], version=self.offers[aid]["version"] + 1)
            candidate.update({k: v for k, v in changes.items() if k != "start_date"})
            self._touch(int(cid))

    def remove(self, cid: str) -> None:
        """Unhire: the application goes back to active."""
        with self.lock:
            for aid in self.candidates[int(cid)]["application_ids"]:
                self.applications[aid]["status"] = "active"
            self._touch(int(cid))

    def webhook(self, action: str, cid: str) -> tuple[bytes, dict[str, str]]:
        candidate = self.candidates[int(cid)]
        aid = candidate["application_ids"][0]
        body = compact(
            {
                "action": action,
                "payload": {
                    "application": {**self.applications[aid], "candidate": candidate, "offer": self.offers.get(aid)}
                },
            }
        )
        return body, {
            "Signature": f"sha256 {hmac_hex(self.webhook_secret, body)}",
            "Greenhouse-Event-ID": str(uuid.uuid4()),
        }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def create_app(state: GreenhouseState) -> Starlette:
    def guard(request: Request) -> Response | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if request.path_params.get("version") == "v3":
            ok = scheme.lower() == "bearer" and state.tokens.get(value, 0) > time.time()
        else:
            try:
                ok = scheme.lower() == "basic" and secrets.compare_digest(
                    base64.b64decode(value).decode().partition(":")[0].encode(), state.api_key.encode()
                )
            except ValueError:
                ok = False
        if not ok:
            return _error(401, "Invalid Basic Auth credentials" if scheme.lower() != "bearer" else "Unauthorized")
        if state.denied(request.url.path):  # keys are all-or-nothing per enabled endpoint
            return _error(403, "This API Key does not have permission for this endpoint")
        if (status := state.faults.take()) is not None:
            return _error(status, "Internal Server Error")
        if not state.gate.admit():
            headers = state.gate.headers()
            wait = max(0.0, float(headers["X-RateLimit-Reset"]) - time.time())
            return _error(429, "Too many requests", {**headers, "Retry-After": str(max(1, round(wait)))})
        return None

    def listing(request: Request, rows: list[dict[str, Any]]) -> Response:
        q, version = request.query_params, request.path_params["version"]
        base = str(request.url.replace(query=""))
        if version == "v3" and "cursor" in q:
            if len(q) > 1:
                return _error(422, "cursor must be the only query parameter")
            try:
                secret, start, per_page, filters = json.loads(base64.urlsafe_b64decode(q["cursor"]))
            except ValueError:
                return _error(422, "invalid cursor")
            if secret != state.cursor_secret:
                return _error(422, "cursor expired")
            rows = [r for r in rows if all(r.get(k) == v for k, v in filters.items())]
        else:
            per_page = int(q.get("per_page", 100))
            if not 1 <= per_page <= 500:
                return _error(422, "per_page must be between 1 and 500")
            start = (int(q.get("page", 1)) - 1) * per_page
        chunk, links = rows[start : start + per_page], []
        if start + per_page < len(rows):
            if version == "v3":
                cursor = (
                    [
                        state.cursor_secret,
                        start + per_page,
                        per_page,
                        {"status": q.get("status")} if "status" in q else {},
                    ]
                    if "cursor" not in q
                    else [state.cursor_secret, start + per_page, per_page, filters]
                )
                token = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()
                links.append(f'<{base}?cursor={token}>; rel="next"')
            else:
                page = start // per_page + 1
                keep = "&".join(f"{k}={v}" for k, v in q.items() if k != "page")
                links.append(f'<{base}?{keep}&page={page + 1}>; rel="next"')
                if q.get("skip_count") != "true":
                    links.append(f'<{base}?{keep}&page={-(-len(rows) // per_page)}>; rel="last"')
        headers = {k: v for k, v in state.gate.headers().items() if k != "X-RateLimit-Reset"}
        return JSONResponse(chunk, headers={**headers, **({"Link": ", ".join(links)} if links else {})})

    async def applications(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        q = request.query_params
        rows = sorted(state.applications.values(), key=lambda a: a["id"])
        if q.get("status"):
            rows = [a for a in rows if a["status"] == q["status"]]
        since = q.get("last_activity_after") or q.get("last_activity_at[gte]")
        if since:
            rows = [a for a in rows if after(a["last_activity_at"], since)]
        return listing(request, rows)

    def single(table: dict[int, dict[str, Any]], what: str):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> Response:
            if (denied := guard(request)) is not None:
                return denied
            found = table.get(int(request.path_params["rid"]))
            return JSONResponse(found) if found else _error(404, f"{what} not found")

        return endpoint

    async def token(request: Request) -> Response:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(value).decode() if scheme.lower() == "basic" else ""
        except ValueError:
            given = ""
        form = await form_of(request)
        if given != f"{state.client_id}:{state.client_secret}" or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        access = secrets.token_urlsafe(24)
        state.tokens[access] = time.time() + 3600
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 3600})

    return Starlette(
        routes=[
            Route("/{version:str}/applications", applications),
            Route("/{version:str}/applications/{rid:int}", single(state.applications, "Application")),
            Route("/{version:str}/candidates/{rid:int}", single(state.candidates, "Candidate")),
            Route("/{version:str}/applications/{rid:int}/offers/current_offer", single(state.offers, "Offer")),
            Route("/{version:str}/jobs/{rid:int}", single(state.jobs, "Job")),
            Route("/token", token, methods=["POST"]),
            *admin_routes(state, "hire_candidate", "update_candidate"),
        ]
    )


State = GreenhouseState  # the name the sandbox and tests look for in every vendor emulator


# What `provisioner sandbox` serves and prints for this vendor (engine/sandbox names no vendor).
SANDBOX_RANK = 5  # where its entry sits in the printed config


def sandbox_settings(url: str, state: GreenhouseState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}
    client_id: {state.client_id}
    client_secret: {state.client_secret}
    token_url: {url}/token
    webhook_secret: {state.webhook_secret}
"""
