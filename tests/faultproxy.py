"""A fault-injecting reverse proxy (raw ASGI) for exercising retry and idempotency paths.

Tests run it with uvicorn in front of a real SCIM app and open a "fault window" during which a
reproducible share of requests fail: refused (503/429 with Retry-After, 500) or lost after the
upstream already applied them ("forward_500"), the case that catches non-idempotent retries.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import time

import httpx
from starlette.types import Receive, Scope, Send

KINDS = ("503", "429", "500", "forward_500")
# RFC 9110 hop-by-hop headers, plus Host (httpx sets it for the upstream) and the framing headers
# that no longer match once httpx has re-read and decoded the body.
_DROP_REQUEST = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_DROP_RESPONSE = _DROP_REQUEST | {"content-encoding"}
_SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        share: float,
        seed: int,
        retry_after: int,
        kinds: tuple[str, ...],
        fault_paths: tuple[str, ...] | None,
        timeout: float,
    ) -> None:
        if not kinds or set(kinds) - set(KINDS):
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds}")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be within [0, 1], got {share}")
        self.upstream = httpx.URL(upstream)
        self.share, self.retry_after, self.kinds = share, retry_after, kinds
        self.fault_paths, self.timeout = fault_paths, timeout
        self._rng = random.Random(seed)
        # Round-robin rather than random so that even a short window hits every kind.
        self._next_kind = itertools.cycle(kinds)
        self._until = 0.0  # monotonic deadline; one float keeps timed windows lock-free
        # Tests read stats from their own thread while uvicorn's loop updates them.
        self._lock = threading.Lock()
        self._stats = self._zero()
        self._client: httpx.AsyncClient | None = None

    # Window and counters: callable from any thread.
    def open_window(self, seconds: float | None = None) -> None:
        self._until = math.inf if seconds is None else time.monotonic() + seconds

    def close_window(self) -> None:
        self._until = 0.0

    @property
    def active(self) -> bool:
        return time.monotonic() < self._until

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot: seen == forwarded + faulted, faulted == sum of the per-kind counts."""
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = self._zero()

    def _zero(self) -> dict[str, int]:
        return dict.fromkeys(("seen", "forwarded", "faulted", "upstream_errors", *self.kinds), 0)

    def _count(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._stats[key] += 1

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            raise RuntimeError(f"faultproxy only speaks HTTP, not {scope['type']}")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        kind = self._pick_fault(scope["path"])
        if kind is None:
            self._count("seen", "forwarded")
            status, headers, content = await self._forward(scope, body)
            return await _respond(send, status, headers, content)
        self._count("seen", "faulted", kind)
        if kind == "forward_500":
            await self._forward(scope, body)  # the upstream acts; its answer is what gets lost
        extra = [(b"retry-after", str(self.retry_after).encode())] if kind in ("503", "429") else []
        status = 500 if kind == "forward_500" else int(kind)
        error = {"schemas": [_SCIM_ERROR], "status": str(status), "detail": f"faultproxy injected {kind}"}
        await _respond(send, status, [(b"content-type", b"application/scim+json"), *extra], json.dumps(error).encode())

    def _pick_fault(self, path: str) -> str | None:
        if not self.active or (self.fault_paths is not None and not path.startswith(self.fault_paths)):
            return None
        with self._lock:  # rng and cycle are only drawn for eligible requests: reproducible runs
            return next(self._next_kind) if self._rng.random() < self.share else None

    async def _forward(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if self._client is None:
            # Lazily, so the client's pool belongs to the loop that serves requests.
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        # raw_path keeps the client's percent-encoding (SCIM ids and filters) byte for byte.
        raw = self.upstream.raw_path.rstrip(b"/") + scope.get("raw_path", scope["path"].encode())
        if scope["query_string"]:
            raw += b"?" + scope["query_string"]
        headers = _filter(scope["headers"], _DROP_REQUEST)
        try:
            response = await self._client.request(
                scope["method"], self.upstream.copy_with(raw_path=raw), headers=headers, content=body
            )
        except httpx.TimeoutException:
            self._count("upstream_errors")
            return 504, [], b"upstream timed out"
        except httpx.TransportError as exc:
            self._count("upstream_errors")
            return 502, [], f"upstream unreachable: {exc!r}".encode()
        return response.status_code, _filter(response.headers.raw, _DROP_RESPONSE), response.content

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()  # on the serving loop, where the client's connections live
                await send({"type": "lifespan.shutdown.complete"})
                return


def _filter(headers: list[tuple[bytes, bytes]], drop: set[str]) -> list[tuple[bytes, bytes]]:
    # Headers named in Connection are hop-by-hop as well (RFC 9110 section 7.6.1).
    named = {
        token.strip()
        for key, value in headers
        if key.lower() == b"connection"
        for token in value.decode("latin-1").lower().split(",")
    }
    return [(k, v) for k, v in headers if k.decode("latin-1").lower() not in drop | named]


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def fault_proxy(
    upstream: str,
    *,
    share: float = 0.3,
    seed: int = 7,
    retry_after: int = 1,
    kinds: tuple[str, ...] = KINDS,
    fault_paths: tuple[str, ...] | None = None,
    timeout: float = 10.0,
) -> FaultProxy:
    """An ASGI app forwarding to `upstream`; faults only while `open_window()` is in effect."""
    return FaultProxy(
        upstream, share=share, seed=seed, retry_after=retry_after, kinds=kinds, fault_paths=fault_paths, timeout=timeout
    )
