"""Who may use the API and the console: a bearer token for the API, a signed session cookie for
the console, and a CSRF token bound to that session on every console POST.

Two kinds of token: the shared `api.token` (an operator, who nobody can name) and named ones
(`api.tokens`: a person, with roles). Only a named approver decides approvals; only an operator
(the shared token, or a named token with the operator role) uses the rest. Tokens are compared in
constant time and never logged. With no token configured the API and the console answer 403: an
operations surface without a credential is not one to leave open.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request

from provisioner.engine.config import Config
from provisioner.engine.contracts.approvals import Approver
from provisioner.engine.runtime.approvals import approver_of, named_token
from provisioner.engine.store.sessions import Sessions

SESSION_COOKIE = "provisioner_session"
SESSION_HOURS = 12
NO_TOKEN = "the API and console are off: set api.token in the config (e.g. token: ${PROVISIONER_API_TOKEN})"


@dataclass(frozen=True)
class Principal:
    """Who presented a token: `name` None for the shared api.token."""

    name: str | None
    operator: bool
    approver: Approver | None = None

    @property
    def shown(self) -> str:
        return self.name or "the shared api.token"

    @property
    def agent_only(self) -> bool:
        """An agent's token (role agent alone): the MCP surface, nothing of the console or metrics."""
        return not self.operator and self.approver is None


SHARED = Principal(None, operator=True)


class Auth:
    def __init__(self, config: Config, sessions: Sessions | None = None):
        self.config = config
        token = config.api.token.get_secret_value() if config.api.token else ""
        self._token = token.encode()
        self.enabled = bool(token) or bool(config.api.tokens)
        self.metrics_auth = config.api.metrics_auth
        # Sessions are signed with a key derived from the tokens: changing one logs everyone out.
        named = b"".join(t.token.get_secret_value().encode() + b"\0" for t in config.api.tokens)
        self._key = hashlib.sha256(b"provisioner-session:" + self._token + b"\0" + named).digest()
        # Server-side sessions: a cookie counts only while its id is stored (logout deletes it).
        self.sessions = sessions

    def principal(self, presented: str) -> Principal | None:
        """Who this token is; None for no valid token."""
        if not self.enabled or not presented:
            return None
        if self._token and hmac.compare_digest(presented.encode(), self._token):
            return SHARED
        token = named_token(self.config, presented)
        return self._named(token.name) if token is not None else None

    def _named(self, name: str) -> Principal | None:
        token = next((t for t in self.config.api.tokens if t.name == name), None)
        if token is None:  # a session of a token since removed from the config
            return None
        return Principal(token.name, operator="operator" in token.roles, approver=approver_of(self.config, token))

    def token_ok(self, presented: str) -> bool:
        return self.principal(presented) is not None

    def bearer(self, request: Request) -> Principal | None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        return self.principal(presented.strip()) if scheme.lower() == "bearer" else None

    def bearer_ok(self, request: Request) -> bool:
        return self.bearer(request) is not None

    def scrape_ok(self, request: Request) -> bool:
        """A token that may read /metrics: any but an agent's (least privilege: agents use /mcp)."""
        principal = self.bearer(request)
        return principal is not None and not principal.agent_only

    def refusal(self, request: Request) -> tuple[int, str] | None:
        """Why an API request is refused (status, reason), from its headers alone; None to admit it
        (what the token may do is checked per route)."""
        if not self.enabled:
            return 403, NO_TOKEN
        if not self.bearer_ok(request):
            return 401, "a valid bearer token is required"
        return None

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, address: str = "", principal: Principal = SHARED) -> str:
        session_id = secrets.token_hex(16)
        if self.sessions is not None:
            self.sessions.start(session_id, address, timedelta(hours=SESSION_HOURS))
        body = f"{int(time.time())}.{session_id}" + (f".{principal.name}" if principal.name else "")
        return f"{body}.{self._sign(body)}"

    def end_session(self, session: str) -> None:
        if self.sessions is not None:
            self.sessions.revoke(_session_id(session) or "-")

    def session_principal(self, session: str) -> Principal | None:
        """Who logged in to this (valid) session: the shared token's operator, or a named token's holder."""
        name = session.split(".", 2)[2] if session.count(".") >= 2 else ""
        return self._named(name) if name else (SHARED if self._token else None)

    def session(self, request: Request) -> str | None:
        """The session id from a valid, unexpired cookie, else None."""
        value = request.cookies.get(SESSION_COOKIE, "")
        body, _, signature = value.rpartition(".")
        issued, _, _ = body.partition(".")
        if not (self.enabled and body and issued.isdigit()):
            return None
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        if time.time() - int(issued) > SESSION_HOURS * 3600:
            return None
        if self.sessions is not None and not self.sessions.valid(_session_id(body)):
            return None  # logged out, or revoked by an operator
        if self.session_principal(body) is None:
            return None  # its token is no longer in the config
        return body

    def csrf_token(self, session: str) -> str:
        return self._sign("csrf:" + session)

    def csrf_ok(self, session: str, presented: str) -> bool:
        return hmac.compare_digest(presented, self.csrf_token(session))


def _session_id(body: str) -> str:
    """The stored id in a session body: `<issued>.<id>` or `<issued>.<id>.<token name>`."""
    parts = body.split(".", 2)
    return parts[1] if len(parts) > 1 else ""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen(config: Config) -> tuple[str, int]:
    """host, port to listen on; a non-loopback address needs an api.token (ValueError otherwise)."""
    host, _, port = config.engine.listen.rpartition(":")
    host = host or "0.0.0.0"
    if not is_loopback(host) and not (config.api.token or config.api.tokens):
        raise ValueError(
            f"engine.listen is {config.engine.listen}, beyond this machine, but api.token is not set: "
            "set a token, or listen on 127.0.0.1"
        )
    return host, int(port)
