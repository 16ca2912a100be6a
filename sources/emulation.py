"""What the source emulators share: fake people, forced faults, the rate gate, webhook delivery."""

from __future__ import annotations

import json
import logging
import random
import threading
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from provisioner.engine.kit.emulation import Faults, RateGate, WindowGate

log = logging.getLogger("provisioner.emulators")

DEPARTMENTS = {
    "Engineering": ["Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager"],
    "Sales": ["Account Executive", "Sales Development Rep", "Sales Manager"],
    "Marketing": ["Marketing Manager", "Content Strategist"],
    "Finance": ["Accountant", "Financial Analyst"],
    "People": ["People Partner", "Recruiter"],
    "Support": ["Support Engineer", "Support Lead"],
}
LOCATIONS = [("Berlin", "DE"), ("London", "GB"), ("New York", "US"), ("Lisbon", "PT"), ("Toronto", "CA")]
COMMITMENTS = ["Full-time"] * 8 + ["Part-time", "Contractor", "Intern"]


def ascii_local(first: str, last: str) -> str:
    local = unicodedata.normalize("NFKD", f"{first}.{last}".lower()).encode("ascii", "ignore").decode()
    return "".join(c for c in local if c.isalnum() or c == ".")


def iso_now() -> str:
    """Now, as the JSON APIs here write it: UTC, milliseconds, a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fake_people(
    count: int, seed: int = 7, starts: tuple[int, int] = (7, 60), commitments: list[str] = COMMITMENTS
) -> list[dict[str, Any]]:
    """Plausible people: names, a personal email, a job, a place, a commitment, and a start date
    `starts` days from today (the default: new hires; negative days: people already working)."""
    # Imported here: every CLI command loads the emulators' module (for `demo` and `sandbox`), and
    # Faker's locale tables cost more to import than the rest of a `sync --once` start-up does.
    from faker import Faker

    fake = Faker(["en_US", "de_DE", "es_ES", "pt_PT"])
    fake.seed_instance(seed)
    rng = random.Random(seed)
    people = []
    for n in range(count):
        first, last = fake.first_name(), fake.last_name()
        department = rng.choice(sorted(DEPARTMENTS))
        city, country = rng.choice(LOCATIONS)
        people.append(
            {
                "first_name": first,
                "last_name": last,
                "personal_email": f"{ascii_local(first, last)}{n}@mail.example",
                "department": department,
                "title": rng.choice(DEPARTMENTS[department]),
                "location": city,
                "country": country,
                "commitment": rng.choice(commitments),
                "start_date": (date.today() + timedelta(days=rng.randint(*starts))).isoformat(),
            }
        )
    return people


@dataclass
class Vendor:
    """The knobs every emulator has: credentials, forced faults, the vendor's rate limit, and an
    optional URL its webhooks are delivered to (signed as the vendor signs them)."""

    faults: Faults = field(default_factory=Faults)
    gate: RateGate | WindowGate = field(default_factory=RateGate)
    webhook_secret: str = "whsec-test"
    webhook_url: str | None = None
    # Path fragments the credential may not read (a missing scope or endpoint permission): 403.
    forbidden: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)

    denials: int = 0

    def denied(self, path: str) -> bool:
        refused = any(fragment in path for fragment in self.forbidden)
        self.denials += refused
        return refused

    def admit(self) -> tuple[int, dict[str, str]] | None:
        """(status, headers) when this request is refused by a forced fault or the rate limit."""
        if (status := self.faults.take()) is not None:
            return status, {}
        if not self.gate.admit():
            return 429, self.gate.headers()
        return None

    def deliver(self, body: bytes, headers: dict[str, str]) -> int | None:
        """POST a signed webhook to `webhook_url`, as the vendor would; the status, or None."""
        if not self.webhook_url:
            return None
        try:
            return httpx.post(
                self.webhook_url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=10
            ).status_code
        except httpx.HTTPError as exc:
            log.warning("webhook delivery to %s failed: %s", self.webhook_url, type(exc).__name__)
            return None


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def form_of(request: Any) -> dict[str, str]:
    """An urlencoded body (OAuth token requests), without needing python-multipart."""
    return {k: v[-1] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}


def after(stamp: str, since: str) -> bool:
    """ISO-8601 comparison by instant, not by text ("…31.294Z" is after "…31Z")."""
    parse = lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))  # noqa: E731
    return parse(stamp) >= parse(since)


def admin_routes(state: Any, hire_event: str | None = None, change_event: str | None = None) -> list[Any]:
    """`/_admin/...` for tests and the sandbox: hire, change, undo (remove) or terminate a person,
    and force faults. With events named, the vendor's signed webhook is delivered as it would be."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def notify(event: str | None, pid: str) -> None:
        if event and hasattr(state, "webhook"):
            state.deliver(*state.webhook(event, pid))

    async def hire(request: Request) -> JSONResponse:
        pid = state.hire(**await request.json())
        notify(hire_event, pid)
        return JSONResponse({"id": pid}, status_code=201)

    async def person(request: Request) -> JSONResponse:
        pid = request.path_params["pid"]
        try:
            if request.method == "DELETE":
                state.remove(pid)
            elif request.url.path.endswith("/terminate"):
                body = await request.json() if await request.body() else {}
                state.terminate(pid, body.get("on"))
            else:
                state.change(pid, **await request.json())
        except (KeyError, ValueError):
            return JSONResponse({"error": f"unknown person {pid}"}, status_code=404)
        notify(change_event, pid)
        return JSONResponse({"id": pid})

    async def faults(request: Request) -> JSONResponse:
        body = await request.json()
        state.faults.fail_next = int(body.get("fail", state.faults.fail_next))
        state.faults.fail_status = int(body.get("fail_status", state.faults.fail_status))
        state.gate.storm = int(body.get("storm", state.gate.storm))
        return JSONResponse({"requests": state.faults.requests, "rate_limited": state.gate.rejected})

    routes = [
        Route("/_admin/hires", hire, methods=["POST"]),
        Route("/_admin/people/{pid}", person, methods=["PATCH", "DELETE"]),
        Route("/_admin/faults", faults, methods=["POST"]),
    ]
    if hasattr(state, "terminate"):
        routes.append(Route("/_admin/people/{pid}/terminate", person, methods=["POST"]))
    return routes
