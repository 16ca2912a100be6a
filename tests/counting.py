"""A SCIM app that counts the writes it lets through and fails them on demand (the fast tier's)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any


class CountingApp:
    """A WSGI app in front of another that counts the writes to /Users it lets through, and answers
    every one with `failing` (a status line: a transient 503, a permanent 400) while that is set."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.writes: Counter[str] = Counter()
        self.failing: str | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ["REQUEST_METHOD"]
        if method in ("POST", "PUT", "PATCH") and environ.get("PATH_INFO", "").startswith("/Users"):
            if (status := self.failing) is not None:
                body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.split()[0]}
                start_response(status, [("Content-Type", "application/scim+json")])
                return [json.dumps(body).encode()]
            with self._lock:
                self.writes[method] += 1
        return self.inner(environ, start_response)
