"""Who may use the API and the console: a bearer token for the API, a signed session cookie for
the console, and a CSRF token bound to that session on every console POST.

Tokens are compared in constant time and never logged. With no `api.token` configured the API and
the console answer 403: an operations surface without a credential is not one to leave open.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from datetime import timedelta

from starlette.requests import Request

from provisioner.engine.config import Config
from provisioner.engine.store.sessions import Sessions

SESSION_COOKIE = "provisioner_session"
SESSION_HOURS = 12
NO_TOKEN = "the API and console are off: set api.token in the config (e.g. token: ${PROVISIONER_API_TOKEN})"


class Auth:
    def __init__(self, config: Config, sessions: Sessions | None = None):
        token = config.api.token.get_secret_value() if config.api.token else ""
        self._token = token.encode()
        self.enabled = bool(token)
        self.metrics_auth = config.api.metrics_auth
        # Sessions are signed with a key derived from the token: changing the token logs everyone out.
        self._key = hashlib.sha256(b"provisioner-session:" + self._token).digest()
        # Server-side sessions: a cookie counts only while its id is stored (logout deletes it).
        self.sessions = sessions

    def token_ok(self, presented: str) -> bool:
        return self.enabled and hmac.compare_digest(presented.encode(), self._token)

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(presented.strip())

    def refusal(self, request: Request) -> tuple[int, str] | None:
        """Why an API request is refused (status, reason), from its headers alone; None to admit it."""
        if not self.enabled:
            return 403, NO_TOKEN
        if not self.bearer_ok(request):
            return 401, "a valid bearer token is required"
        return None

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, address: str = "") -> str:
        session_id = secrets.token_hex(16)
        if self.sessions is not None:
            self.sessions.start(session_id, address, timedelta(hours=SESSION_HOURS))
        body = f"{int(time.time())}.{session_id}"
        return f"{body}.{self._sign(body)}"

    def end_session(self, session: str) -> None:
        if self.sessions is not None:
            self.sessions.revoke(session.partition(".")[2] or "-")

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
        if self.sessions is not None and not self.sessions.valid(body.partition(".")[2]):
            return None  # logged out, or revoked by an operator
        return body

    def csrf_token(self, session: str) -> str:
        return self._sign("csrf:" + session)

    def csrf_ok(self, session: str, presented: str) -> bool:
        return hmac.compare_digest(presented, self.csrf_token(session))


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
    if not is_loopback(host) and not config.api.token:
        raise ValueError(
            f"engine.listen is {config.engine.listen}, beyond this machine, but api.token is not set: "
            "set a token, or listen on 127.0.0.1"
        )
    return host, int(port)
