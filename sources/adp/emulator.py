"""An ADP Workforce Now emulator: the OAuth token endpoint, `GET /hr/v2/workers` and the event
notification queue, over mutual TLS.

Facts (ADP's developer documentation and ADP's published sample payloads):
- Client credentials at `/auth/oauth/v2/token` (client id and secret as HTTP Basic), bearer tokens
  on the API, both only with the client certificate ADP signed
  (https://developers.adp.com/articles/guides/auth-process-data-connector-apps,
  https://developers.adp.com/articles/general/access-tokens). Served by `serve` with TLS and
  `CERT_REQUIRED`: a client without a certificate from the trusted CA fails the handshake; a
  request that did not come over TLS at all is answered 401 "proper client ssl certificate was
  not presented", and token errors use the bodies of
  https://developers.adp.com/articles/general/api-common-exceptions-and-tips-for-handling.
- `$top`/`$skip` paging (https://developers.adp.com/articles/general/introduction-to-adp-restful-apis);
  Workforce Now returns at most 100 per page, and 204 No Content past the last worker.
- Worker v2 fields as ADP's samples show them: associateOID, workerID.idValue,
  person.legalName/preferredName, workerStatus.statusCode.codeValue Active | Inactive |
  Terminated, workAssignments[primaryIndicator] with hireDate, terminationDate, assignmentStatus
  (A | L | T with shortName), jobTitle, workerTypeCode, home/assigned organizational units
  typed Department / Business Unit / Cost Number (codeValue + shortName), reportsTo[].associateOID,
  businessCommunication.emails (nameCode "Work E-mail")
  (https://github.com/adpllc/marketplace-sample-payloads, wfn/hr/workers-v2).
- Event notifications (https://developers.adp.com/articles/general/adp-event-apis-and-event-notification-guide):
  `GET /core/v1/event-notification-messages` answers one message with its id in `adp-msg-msgid`,
  or 204 when the queue is empty; the same message heads the queue until
  `DELETE /core/v1/event-notification-messages/{id}`.
- Errors carry ADP's `confirmMessage` (processMessages[].userMessage.messageTxt). ADP publishes no
  numeric rate limit: the gate answers 429 with Retry-After (the number is the emulator's).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.engine.kit.emulation import RateGate
from provisioner.engine.kit.servers import BackgroundServer, serve_asgi
from provisioner.sources.adp.certs import TlsFiles
from provisioner.sources.adp.payloads import confirm_message, notification, worker_json
from provisioner.sources.emulation import Vendor, admin_routes, fake_people, form_of

MAX_TOP = 100
WORKER_TYPES = {"Full-time": ("F", "Full Time"), "Part-time": ("P", "Part Time")}
# Not in ADP's samples: codes an account may configure for these kinds of worker.
OTHER_TYPES = {"Contractor": ("C", "Contractor"), "Intern": ("I", "Intern")}


def _aoid(n: int) -> str:
    return "G3" + base64.b32encode(hashlib.sha256(str(n).encode()).digest()).decode()[:14]


@dataclass
class AdpState(Vendor):
    client_id: str = "adp-client-id"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # The API answers only requests that came over TLS with a client certificate (`serve` checks it
    # in the handshake); the sandbox mounts every emulator on one plain-HTTP port and turns this off.
    mutual_tls: bool = True
    key_passphrase: str | None = None
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)  # message ids, in the order they were acknowledged
    seen: list[str] = field(default_factory=list)  # "METHOD /path?query" of each API request
    gate: RateGate = field(default_factory=lambda: RateGate(rate=100.0, burst=100))
    ignore_skip: bool = False  # a lying API: every page of the listing is the first one
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    @cached_property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.key_passphrase)

    def seed(self, count: int, seed: int = 23) -> list[str]:
        people = fake_people(count, seed)
        ids = [self.hire(**{**person, "start_date": "2024-03-01"}, notify=False) for person in people]
        for aoid in ids[1:]:
            self.workers[aoid]["manager"] = ids[0]
        return ids

    def hire(self, notify: bool = True, **person: Any) -> str:
        """A new worker from the fields `fake_people` writes (first_name, last_name, personal_email,
        department, title, location, country, commitment, start_date); ADP queues worker.hire."""
        p = {"department": "Engineering", "title": "Software Engineer", "location": "Berlin", "country": "DE", **person}
        first, last, kind = p["first_name"], p["last_name"], p.get("commitment", "Full-time")
        with self.lock:
            n = next(self._ids)
            aoid = _aoid(n)
            self.workers[aoid] = {
                "aoid": aoid,
                "worker_id": f"{n:010d}",
                "given": first,
                "family": last,
                "preferred": None,
                "work_email": f"{first}.{last}{n}@acme.example".lower().replace(" ", ""),
                "personal_email": p["personal_email"],
                "job_title": p["title"],
                "department": p["department"],
                "business_unit": "Corporate",
                "cost_number": f"00{n}",
                "location": p["location"],
                "country": p["country"],
                "worker_type": WORKER_TYPES.get(kind) or OTHER_TYPES.get(kind) or WORKER_TYPES["Full-time"],
                "hire_date": p.get("start_date") or date.today().isoformat(),
                "termination_date": None,
                "on_leave": False,
                "manager": None,
            }
            if notify:
                self.notify("worker.hire", aoid)
            return aoid

    def change(self, aoid: str, **changes: Any) -> None:
        with self.lock:
            self.workers[aoid].update(changes)
            self.notify("worker.work-assignment.modify", aoid)

    def terminate(self, aoid: str, on: str | None = None) -> None:
        with self.lock:
            self.workers[aoid]["termination_date"] = on or date.today().isoformat()
            self.notify("worker.terminate", aoid)

    def remove(self, aoid: str) -> None:
        """The record disappears from the listing (a hire entered by mistake and deleted)."""
        with self.lock:
            del self.workers[aoid]

    def notify(self, event: str, aoid: str) -> str:
        """Put an event notification message in the subscriber's queue, as ADP does on a change."""
        msgid = str(uuid.uuid4())
        worker = self.workers.get(aoid, {})
        self.queue.append({"id": msgid, "events": [notification(event, aoid, worker.get("worker_id"))]})
        return msgid

    def serve(self) -> BackgroundServer:
        """This emulator over HTTPS, requiring a client certificate signed by `tls.ca`."""
        files = self.tls
        return serve_asgi(
            create_app(self),
            ssl_certfile=str(files.server_cert),
            ssl_keyfile=str(files.server_key),
            ssl_ca_certs=str(files.ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """The token endpoint's refusals (RFC 6749 §5.2), worded as ADP words them."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def create_app(state: AdpState) -> Starlette:
    def failed(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(confirm_message(status, text), status_code=status, headers=headers)

    def refused(request: Request) -> Response | None:
        """The answer for a request the API does not serve, or None."""
        state.seen.append(f"{request.method} {request.url.path}?{request.url.query}")
        if state.mutual_tls and request.url.scheme != "https":
            return oauth_error(401, "invalid_request", "proper client ssl certificate was not presented")
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in state.tokens:
            return JSONResponse({"error": "invalid_token", "error_description": "Invalid or expired token"}, 401)
        if (limited := state.admit()) is not None:
            status, headers = limited
            text = "Too many requests; retry later" if status == 429 else "Service unavailable"
            return failed(status, text, headers)
        if state.denied(request.url.path):
            return failed(403, "The requester is not authorized to access this resource")
        return None

    async def token(request: Request) -> Response:
        if state.mutual_tls and request.url.scheme != "https":
            return oauth_error(401, "invalid_request", "proper client ssl certificate was not presented")
        form = await form_of(request)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if "grant_type" not in form:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "Missing or duplicate parameters"}, 400
            )
        if form["grant_type"] != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, 400)
        if client_id != state.client_id or not secrets.compare_digest(
            (secret or "").encode(), state.client_secret.encode()
        ):
            described = "The given client credentials were not valid"
            return JSONResponse({"error": "invalid_client", "error_description": described}, 401)
        issued = secrets.token_hex(16)
        state.tokens.add(issued)
        return JSONResponse({"access_token": issued, "token_type": "Bearer", "expires_in": 3600, "scope": "api"})

    async def workers(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        try:
            top = min(int(request.query_params.get("$top", MAX_TOP)), MAX_TOP)
            skip = int(request.query_params.get("$skip", 0))
        except ValueError:
            return failed(400, "$top and $skip must be whole numbers")
        with state.lock:
            skip = 0 if state.ignore_skip else skip
            rows = list(state.workers.values())[skip : skip + top]
        if not rows:
            return Response(status_code=204)  # past the last worker
        today = date.today()
        return JSONResponse({"workers": [worker_json(w, today) for w in rows]})

    async def worker(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        found = state.workers.get(request.path_params["aoid"])
        if found is None:
            return failed(400, "associateOID is invalid.")
        return JSONResponse({"workers": [worker_json(found, date.today())]})

    async def next_message(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        with state.lock:
            head = state.queue[0] if state.queue else None
        if head is None:
            return Response(status_code=204)
        return JSONResponse({"events": head["events"]}, headers={"adp-msg-msgid": head["id"]})

    async def delete_message(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        msgid = request.path_params["msgid"]
        with state.lock:
            kept = [m for m in state.queue if m["id"] != msgid]
            if len(kept) == len(state.queue):
                return failed(404, "Message not found", None)
            state.queue[:] = kept
            state.deleted.append(msgid)
        return Response(status_code=200)

    return Starlette(
        routes=[
            Route("/auth/oauth/v2/token", token, methods=["POST"]),
            Route("/hr/v2/workers", workers, methods=["GET"]),
            Route("/hr/v2/workers/{aoid}", worker, methods=["GET"]),
            Route("/core/v1/event-notification-messages", next_message, methods=["GET"]),
            Route("/core/v1/event-notification-messages/{msgid}", delete_message, methods=["DELETE"]),
            *admin_routes(state),
        ]
    )


State = AdpState  # the name the sandbox and tests look for in every vendor emulator

# The sandbox serves every emulator on one plain-HTTP port, so it cannot ask for the certificate
# there; the printed config still names the client certificate the emulator made.
SANDBOX_CREDENTIALS = {"client_secret": "sandbox-adp-secret", "mutual_tls": False}
SANDBOX_RANK = 3


def sandbox_settings(url: str, state: AdpState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}
    token_url: {url}/auth/oauth/v2/token
    client_id: {state.client_id}
    client_secret: {state.client_secret}
    cert_file: {state.tls.client_cert}
    key_file: {state.tls.client_key}
"""
