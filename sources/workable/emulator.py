"""A Workable emulator: candidates and jobs as `https://<sub>.workable.com/spi/v3` serves them.

Facts: Workable's API reference (https://workable.readme.io/reference). Bearer tokens; the
account token allows 10 requests per rolling 10 s and an OAuth/partner token 50; every answer
carries `X-Rate-Limit-Limit/-Remaining/-Reset`, over the limit is 429. Lists take `limit`
(default 50, max 100) and page through `paging.next` URLs; the list gives a reduced candidate,
`/candidates/{id}` the full one. A candidate's `stage` is the stage's display name ("Hired") while
the list's `stage` filter takes its slug (`hired`); `/stages` lists both
(https://workable.readme.io/reference/stages). Webhooks: `X-Workable-Signature` = hex HMAC-SHA256 of the body
keyed by the account token, body `{id, event_type, fired_at, resource_type, data}`.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from provisioner.engine.kit.emulation import WindowGate
from provisioner.sources.emulation import Vendor, admin_routes, after, compact, fake_people, iso_now
from provisioner.sources.webhooks import hmac_hex

REDUCED = (
    "id",
    "name",
    "firstname",
    "lastname",
    "headline",
    "account",
    "job",
    "stage",
    "disqualified",
    "sourced",
    "email",
    "domain",
    "created_at",
    "updated_at",
    "hired_at",
)


@dataclass
class WorkableState(Vendor):
    token: str = "workable-account-token"
    oauth_token: str = "workable-oauth-token"
    subdomain: str = "acme"
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate: WindowGate = field(default_factory=lambda: WindowGate(count=10, window=10.0, prefix="X-Rate-Limit"))
    oauth_gate: WindowGate = field(default_factory=lambda: WindowGate(count=50, window=10.0, prefix="X-Rate-Limit"))
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1001))
    # slug → display name; an account may rename a stage ("Hired" → "Offer Accepted – Hired")
    stages: dict[str, str] = field(
        default_factory=lambda: {
            "sourced": "Sourced",
            "applied": "Applied",
            "phone-screen": "Phone Screen",
            "interview": "Interview",
            "offer": "Offer",
            "hired": "Hired",
        }
    )
    stage_slugs: dict[str, str] = field(default_factory=dict)  # candidate id → its stage's slug

    def seed(self, count: int, seed: int = 13) -> list[str]:
        return [self.hire(**person) for person in fake_people(count, seed)]

    def job(self, title: str, department: str, city: str, country: str, commitment: str) -> dict[str, Any]:
        for job in self.jobs.values():
            if (job["title"], job["department"], job["location"]["city"]) == (title, department, city):
                return job
        shortcode = secrets.token_hex(5).upper()
        self.jobs[shortcode] = {
            "id": secrets.token_hex(3),
            "title": title,
            "full_title": f"{title} - {city}",
            "shortcode": shortcode,
            "state": "published",
            "department": department,
            "employment_type": commitment,
            "location": {"location_str": city, "city": city, "country_code": country, "telecommuting": False},
            "created_at": iso_now(),
        }
        return self.jobs[shortcode]

    def hire(
        self,
        *,
        first_name: str,
        last_name: str,
        personal_email: str,
        department: str = "Engineering",
        title: str = "Software Engineer",
        location: str = "Berlin",
        country: str = "DE",
        commitment: str = "Full-time",
        stage: str = "hired",
        **_: Any,
    ) -> str:
        with self.lock:
            cid = f"{next(self._ids):x}"
            job = self.job(title, department, location, country, commitment)
            self.candidates[cid] = {
                "id": cid,
                "name": f"{first_name} {last_name}",
                "firstname": first_name,
                "lastname": last_name,
                "headline": title,
                "account": {"subdomain": self.subdomain, "name": "Acme"},
                "job": {"shortcode": job["shortcode"], "title": job["title"]},
                "stage": self.stages[stage],
                "disqualified": False,
                "sourced": False,
                "email": personal_email,
                "domain": "mail.example",
                "created_at": iso_now(),
                "updated_at": iso_now(),
                "hired_at": iso_now() if stage == "hired" else None,
                "phone": "+1 555 0100",
                "address": location,
                "tags": [],
                "answers": [],
            }
            self.stage_slugs[cid] = stage
            return cid

    def change(self, cid: str, **changes: Any) -> None:
        """`stage` is given as a slug, as the move endpoint takes it."""
        with self.lock:
            if "stage" in changes:
                self.stage_slugs[cid] = changes["stage"]
                changes["stage"] = self.stages[changes["stage"]]
            self.candidates[cid].update({"updated_at": iso_now(), **changes})

    def remove(self, cid: str) -> None:
        """The hire is undone: the candidate is moved back to the offer stage."""
        self.change(cid, stage="offer", hired_at=None)

    def webhook(self, event: str, cid: str) -> tuple[bytes, dict[str, str]]:
        body = compact(
            {
                "id": str(uuid.uuid4()),
                "event_type": event,
                "fired_at": iso_now(),
                "resource_type": "candidate",
                "data": self.candidates[cid],
            }
        )
        return body, {"X-Workable-Signature": hmac_hex(self.webhook_secret, body)}


def create_app(state: WorkableState) -> Starlette:
    def guard(request: Request) -> JSONResponse | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        gate = state.oauth_gate if token == state.oauth_token else state.gate
        if token not in (state.token, state.oauth_token):
            return JSONResponse({"error": "Not authorized"}, status_code=401)
        if state.denied(request.url.path):
            return JSONResponse({"error": "Forbidden: the token lacks the scope for this method"}, status_code=403)
        if (status := state.faults.take()) is not None:
            return JSONResponse({"error": "Internal server error"}, status_code=status)
        if not gate.admit():
            return JSONResponse({"error": "Too many requests"}, status_code=429, headers=gate.headers())
        request.state.gate = gate
        return None

    def answer(request: Request, body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=request.state.gate.headers())

    async def candidates(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        q = request.query_params
        try:
            limit = min(int(q.get("limit", 50)), 100)
        except ValueError:
            return answer(request, {"error": "limit must be a number"}, 400)
        rows = sorted(state.candidates.values(), key=lambda c: int(c["id"], 16))
        if q.get("stage"):
            rows = [c for c in rows if state.stage_slugs.get(c["id"]) == q["stage"]]
        if q.get("updated_after"):
            rows = [c for c in rows if after(c["updated_at"], q["updated_after"])]
        if q.get("since_id"):
            rows = [c for c in rows if int(c["id"], 16) >= int(q["since_id"], 16)]
        chunk, rest = rows[:limit], rows[limit:]
        body: dict[str, Any] = {"candidates": [{k: c[k] for k in REDUCED} for c in chunk]}
        if rest:
            # the next link repeats the filters, moved on by since_id (not an offset)
            params = {k: v for k, v in q.items() if k != "since_id"} | {"since_id": rest[0]["id"]}
            body["paging"] = {"next": str(request.url.replace_query_params(**params))}
        return answer(request, body)

    async def candidate(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        found = state.candidates.get(request.path_params["cid"])
        return answer(request, {"candidate": found} if found else {"error": "Not found"}, 200 if found else 404)

    async def stages(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        stages = enumerate(state.stages.items())
        listed = [{"slug": key, "name": name, "kind": key, "position": i} for i, (key, name) in stages]
        return answer(request, {"stages": listed})

    async def job(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        found = state.jobs.get(request.path_params["shortcode"])
        return answer(request, found if found else {"error": "Not found"}, 200 if found else 404)

    return Starlette(
        routes=[
            Route("/spi/v3/candidates", candidates),
            Route("/spi/v3/candidates/{cid}", candidate),
            Route("/spi/v3/jobs/{shortcode}", job),
            Route("/spi/v3/stages", stages),
            *admin_routes(state, "candidate_moved", "candidate_moved"),
        ]
    )


State = WorkableState  # the name the sandbox and tests look for in every vendor emulator


# What `provisioner sandbox` serves and prints for this vendor (engine/sandbox names no vendor).
SANDBOX_RANK = 4  # where its entry sits in the printed config


def sandbox_settings(url: str, state: WorkableState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}/spi/v3
    token: {state.oauth_token}               # an OAuth token: 50 requests per 10 s (an account token gets 10)
    rate_limit: 50/10.5s
    webhook_secret: {state.webhook_secret}
"""
