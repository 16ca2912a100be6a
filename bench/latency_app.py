"""A SCIM app with a SaaS app's habits for bench/cluster.py: scim2-server (in memory) behind a front
that answers every request `latency` seconds late, takes at most `capacity` requests at once (more
get 429 with Retry-After: 1, as a rate-limited SaaS API does; 0 = no limit) and counts the write
requests it receives, by resource type.

    python bench/latency_app.py PORT LATENCY CAPACITY

`GET /_bench/stats` answers the counts; `GET /_bench/timeline` how busy the app was: its requests in
flight sampled every 0.2 s and the time it took to answer (the latency included); a request with
the header `X-Bench: read` skips the latency and the counting (the bench's own checks of the app's
state).

The front is ASGI on uvicorn: connections are kept alive and the latency is a timer, as a SaaS app's
are. A threaded wsgiref server closed every connection after one answer and accepted them on one
thread behind a listen backlog of 5: with three engines (24 requests at once) the kernel dropped
about a hundred SYNs a run, each costing its request a one-second retransmit, and the app, not the
engines, set the pace. scim2-server itself runs in worker threads (its storage has one lock).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn

with warnings.catch_warnings():  # deprecated in favour of a2wsgi, which this project does not ship
    warnings.simplefilter("ignore")
    from starlette.middleware.wsgi import WSGIMiddleware

from provisioner.engine.kit.servers import free_port, scim_app, wait_for_port
from tests.processes import stop_group

SAMPLE_S = 0.2
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LatencyFront:
    def __init__(self, inner: Any, latency: float, capacity: int):
        self.inner, self.latency, self.capacity = inner, latency, capacity
        self.in_flight = 0  # (one event loop: no lock; the sampler thread only reads it)
        self.counts: Counter[str] = Counter()
        self.samples: list[int] = []  # in flight, every SAMPLE_S: whether the engines keep it busy
        self.answered = [0.0, 0.0]  # seconds spent answering, answers: the latency it really had

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope.get("path", ""), scope.get("method", "")
        json_type = [(b"content-type", b"application/json")]
        if path == "/_bench/stats":
            return await _answer(send, 200, json.dumps(dict(self.counts)).encode(), json_type)
        if path == "/_bench/timeline":
            timeline = {"in_flight": self.samples, "answer_s": self.answered}
            return await _answer(send, 200, json.dumps(timeline).encode(), json_type)
        if (b"x-bench", b"read") in scope.get("headers", []):
            return await self.inner(scope, receive, send)
        if self.capacity and self.in_flight >= self.capacity:
            self.counts["429"] += 1
            return await _answer(send, 429, b"", [(b"retry-after", b"1")])
        self.in_flight += 1
        self.counts["requests"] += 1
        kind = "Users" if "/Users" in path else "Groups" if "/Groups" in path else "other"
        if method in WRITES:
            self.counts[f"{method} {kind}"] += 1
        elif path.rstrip("/").endswith(kind):  # a listing or a filter query, not one resource
            self.counts[f"{kind} searched"] += 1
        started = time.monotonic()
        try:
            await asyncio.sleep(self.latency)
            await self.inner(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.answered[0] += time.monotonic() - started
            self.answered[1] += 1

    def sample(self, stop: threading.Event) -> None:
        while not stop.wait(SAMPLE_S):
            self.samples.append(self.in_flight)


@dataclass
class App:
    url: str
    pid: int


@contextmanager
def latency_app(latency: float = 0.1, capacity: int = 0) -> Iterator[App]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, str(port), str(latency), str(capacity)],
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=30)
        yield App(f"http://127.0.0.1:{port}", process.pid)
    finally:
        stop_group(process, timeout=5)


def app_stats(url: str) -> Counter[str]:
    return Counter(httpx.get(f"{url}/_bench/stats", timeout=10).json())


def app_timeline(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/_bench/timeline", timeout=10).json())


def app_listing(url: str, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with httpx.Client(headers={"X-Bench": "read"}, timeout=60) as client:
        while True:
            page = client.get(f"{url}/{kind}", params={"startIndex": len(out) + 1, "count": 1000}).json()
            out += page.get("Resources") or []
            if not page.get("Resources") or len(out) >= page.get("totalResults", 0):
                return out


def main() -> None:
    port, latency, capacity = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    front = LatencyFront(WSGIMiddleware(scim_app()), latency, capacity)
    threading.Thread(target=front.sample, args=(threading.Event(),), daemon=True).start()
    # backlog: many engines connect at once; none of their SYNs may be dropped
    config = uvicorn.Config(front, host="127.0.0.1", port=port, log_level="warning", lifespan="off", backlog=1024)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
