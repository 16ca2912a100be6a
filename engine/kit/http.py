"""Shared HTTP politeness for every connector and writer: retries, backoff, Retry-After, token bucket.

It is an httpx transport, so any client built on httpx gets it for free.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from opentelemetry.trace import Span

from provisioner.engine.kit import tracing
from provisioner.engine.kit.adaptive import AdaptiveLimit
from provisioner.engine.kit.limits import DEFAULT_MAX_RESPONSE, capped
from provisioner.engine.kit.origin import allowed_origins, check_origin

log = logging.getLogger("provisioner.http")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A server asking us to wait longer than this is treated as down, so a poll fails
    # visibly instead of hanging for an hour.
    max_retry_after: float = 120.0
    # Says a retryable-looking answer is final, e.g. a SOAP authentication fault sent as HTTP 500.
    permanent: Callable[[httpx.Response], bool] | None = None

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, base * 2^attempt], capped."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def is_transient(exc: BaseException) -> bool:
    """Whether a failed call may succeed later unchanged: the network, a timeout, or an answer of
    408/429/5xx (an exception with an int `status`, as writers raise, counts like a response).
    501 Not Implemented is final: the server will not learn the method by tomorrow."""
    if isinstance(exc, httpx.HTTPStatusError):
        return transient_status(exc.response.status_code)
    if isinstance(exc, httpx.TransportError):
        return True
    status = getattr(exc, "status", None)
    return isinstance(status, int) and transient_status(status)


def transient_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or (status >= 500 and status != 501)


class TokenBucket:
    """Client-side rate limit: `rate` requests per second with bursts up to `burst`."""

    def __init__(self, rate: float, burst: int | None = None):
        self.rate = rate
        self.capacity = float(burst or max(1, int(rate)))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class SlidingWindow:
    """Client-side rate limit: at most `count` requests in any `window` seconds (Workable meters a
    rolling ten-second window; a token bucket refilling evenly would overrun it after a burst)."""

    def __init__(self, count: int, window: float):
        self.count = count
        self.window = window
        self.sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self.sent and now - self.sent[0] >= self.window:
                    self.sent.popleft()
                if len(self.sent) < self.count:
                    self.sent.append(now)
                    return
                await asyncio.sleep(self.window - (now - self.sent[0]) + 0.001)


Limiter = TokenBucket | SlidingWindow


def limiter_for(rate: float | None, burst: int | None = None, window: float | None = None) -> Limiter | None:
    """A token bucket for `rate` with bursts, or a sliding window when the vendor meters one."""
    if not rate:
        return None
    if window and not burst:
        return SlidingWindow(max(1, round(rate * window)), window)
    return TokenBucket(rate, burst)


def _remaining(response: httpx.Response) -> int | None:
    for name in ("X-Rate-Limit-Remaining", "X-RateLimit-Remaining"):
        value = response.headers.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds to wait from `Retry-After` (delta or HTTP date) or the vendors' reset headers."""
    value = response.headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None
    for name in ("X-Rate-Limit-Reset", "X-RateLimit-Reset"):
        reset = response.headers.get(name)
        if reset and reset.replace(".", "", 1).isdigit():
            number = float(reset)
            # epoch seconds (or ms) vs seconds-to-wait: vendors use both.
            if number > 1e12:
                number /= 1000
            return max(0.0, number - time.time()) if number > 1e9 else number
    return None


class ResilientTransport(httpx.AsyncBaseTransport):
    """Retries 408/429/5xx and network errors with backoff; waits out a server's rate limit."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        bucket: Limiter | None = None,
        wrapped: httpx.AsyncBaseTransport | None = None,
        limit: AdaptiveLimit | None = None,
        *,
        app: str = "the app",
        origins: frozenset[tuple[str, str, int | None]] = frozenset(),
        max_response: int = DEFAULT_MAX_RESPONSE,
    ):
        self.policy = policy or RetryPolicy()
        self.app = app
        self.origins = origins  # empty: any origin (a client without a base URL)
        self.max_response = max_response
        self.bucket = bucket
        # Requests in flight to this app; each attempt holds a slot, a backoff between attempts does not.
        self.limit = limit
        self.wrapped = wrapped or httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=64))
        # Set when the server says the window is used up (remaining 0): nobody sends before then.
        self.paused_until = 0.0

    async def _pace(self) -> None:
        if self.bucket:
            await self.bucket.acquire()
        wait = self.paused_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _note_limits(self, response: httpx.Response) -> None:
        if _remaining(response) == 0:
            reset = retry_after_seconds(response)
            if reset is not None and reset <= self.policy.max_retry_after:
                self.paused_until = max(self.paused_until, time.monotonic() + reset)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_origin(self.app, request, self.origins)
        # The one place every connector's and writer's request passes: its client span.
        with tracing.request_span(request.method, request.url.host, request.url.path, self.app) as span:
            response = await self._send(request, span)
            tracing.answered(span, response.status_code)
            return response

    async def _send(self, request: httpx.Request, span: Span | None) -> httpx.Response:
        await request.aread()  # the body must be replayable
        # extensions={"retry": False}: one attempt, for a call that must not be repeated blindly
        max_attempts = 1 if request.extensions.get("retry") is False else self.policy.max_attempts
        attempt = 0
        while True:
            await self._pace()
            try:
                response = await capped(await self._attempt(request), request, self.app, self.max_response)
            except (httpx.TimeoutException, httpx.NetworkError) as exc:
                if attempt + 1 >= max_attempts:
                    raise
                delay = self.policy.backoff(attempt)
                log.warning(
                    "%s %s failed (%s); retry %d in %.2fs",
                    request.method,
                    request.url.path,
                    type(exc).__name__,
                    attempt + 1,
                    delay,
                )
            else:
                self._note_limits(response)
                if not await self._retryable(response) or attempt + 1 >= max_attempts:
                    return response
                wait = retry_after_seconds(response)
                if wait is not None and wait > self.policy.max_retry_after:
                    return response
                await response.aread()
                await response.aclose()
                delay = wait if wait is not None else self.policy.backoff(attempt)
                log.info(
                    "%s %s answered %d; retry %d in %.2fs",
                    request.method,
                    request.url.path,
                    response.status_code,
                    attempt + 1,
                    delay,
                )
            attempt += 1
            if span is not None:
                span.set_attribute("http.request.resend_count", attempt)
            await asyncio.sleep(delay)

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        if self.limit is None:
            return await self.wrapped.handle_async_request(request)
        async with self.limit.slot() as outcome:
            try:
                response = await self.wrapped.handle_async_request(request)
            except httpx.TimeoutException:
                outcome.status = None
                raise
            outcome.status = response.status_code
            return response

    async def _retryable(self, response: httpx.Response) -> bool:
        if response.status_code not in RETRYABLE_STATUS:
            return False
        if self.policy.permanent is None:
            return True
        await response.aread()
        return not self.policy.permanent(response)

    async def aclose(self) -> None:
        await self.wrapped.aclose()


def resilient_client(
    base_url: str,
    *,
    auth: httpx.Auth | tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    policy: RetryPolicy | None = None,
    rate: float | None = None,
    burst: int | None = None,
    window: float | None = None,
    limit: AdaptiveLimit | None = None,
    app: str = "the app",
    max_response: int = DEFAULT_MAX_RESPONSE,
    tls: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient with retries, an optional client-side rate limit and an optional limit on
    requests in flight (adaptive or fixed); it talks only to the origin of `base_url` (and the
    auth's token endpoint) and reads no answer over `max_response` bytes. `app` names the
    source or target in errors. `tls` replaces the default TLS settings (a client certificate
    for mutual TLS, a private CA)."""
    bucket = limiter_for(rate, burst, window)
    origins = allowed_origins([base_url, getattr(auth, "token_url", None)])
    wrapped = httpx.AsyncHTTPTransport(verify=tls, limits=httpx.Limits(max_connections=64)) if tls else None
    transport = ResilientTransport(
        policy, bucket, wrapped, limit=limit, app=app, origins=origins, max_response=max_response
    )
    return httpx.AsyncClient(base_url=base_url, auth=auth, headers=headers, timeout=timeout, transport=transport)


def describe_http_error(response: httpx.Response) -> str:
    """A short message from an error response, never echoing request credentials."""
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("message") or body.get("error") or "")
    except ValueError:
        detail = response.text[:200]
    detail = detail or response.headers.get("X-BambooHR-Error-Message", "") or response.reason_phrase
    return f"HTTP {response.status_code} from {response.request.method} {response.request.url.path}: {detail}"
