"""Shared parts of the vendor emulators: the rate limits they enforce and forced faults."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def most_within(times: list[float], window: float) -> int:
    """The most of these (sorted) moments that fall inside any `window` seconds."""
    return max((sum(1 for t in times[i:] if t - first < window) for i, first in enumerate(times)), default=0)


@dataclass
class RateGate:
    rate: float = 10.0  # requests per second
    burst: int = 20
    accepted: list[float] = field(default_factory=list)  # monotonic arrival of each accepted request
    rejected: int = 0
    storm: int = 0  # the next N requests answer 429 whatever the bucket says
    _tokens: float | None = None
    _updated: float = field(default_factory=time.monotonic)

    def admit(self) -> bool:
        now = time.monotonic()
        tokens = self.burst if self._tokens is None else self._tokens
        self._tokens = min(self.burst, tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self.storm > 0 or self._tokens < 1:
            self.storm = max(0, self.storm - 1)
            self.rejected += 1
            return False
        self._tokens -= 1
        self.accepted.append(now)
        return True

    def max_in_any_second(self) -> int:
        """The most requests accepted within one second: at most rate + burst when clients behave."""
        return most_within(self.accepted, 1.0)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


@dataclass
class WindowGate:
    """A rolling-window limit (`count` requests in any `window` seconds) that reports itself in
    headers the way the vendor does: `X-Rate-Limit-*` (Workable) or `X-RateLimit-*` (Greenhouse)."""

    count: int = 10
    window: float = 10.0
    prefix: str = "X-Rate-Limit"
    accepted: list[float] = field(default_factory=list)
    rejected: int = 0
    storm: int = 0

    def _in_window(self, now: float) -> list[float]:
        return [t for t in self.accepted[-self.count :] if now - t < self.window]

    def admit(self) -> bool:
        now = time.monotonic()
        if self.storm > 0 or len(self._in_window(now)) >= self.count:
            self.storm = max(0, self.storm - 1)
            self.rejected += 1
            return False
        self.accepted.append(now)
        return True

    def headers(self) -> dict[str, str]:
        now = time.monotonic()
        recent = self._in_window(now)
        reset = self.window - (now - recent[0]) if len(recent) >= self.count else 0.0
        return {
            f"{self.prefix}-Limit": str(self.count),
            f"{self.prefix}-Remaining": str(self.count - len(recent)),
            # epoch seconds of the moment a request is admitted again
            f"{self.prefix}-Reset": f"{time.time() + reset:.3f}",
        }

    def max_in_any_window(self) -> int:
        return most_within(self.accepted, self.window)


@dataclass
class Faults:
    """Forced server errors: the next `fail_next` requests answer `fail_status`."""

    fail_next: int = 0
    fail_status: int = 500
    requests: int = 0

    def take(self) -> int | None:
        self.requests += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return self.fail_status
        return None
