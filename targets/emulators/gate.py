"""The rate limit an emulated vendor enforces, plus forced 429 storms, with a log tests can check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


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
        times = self.accepted
        return max((sum(1 for t in times[i:] if t - first < 1.0) for i, first in enumerate(times)), default=0)
