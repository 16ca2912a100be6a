"""A SCIM app with a SaaS app's habits for bench/cluster.py: scim2-server (in memory) behind a front
that answers every request `latency` seconds late, takes at most `capacity` requests at once (more
get 429 with Retry-After: 1, as a rate-limited SaaS API does; 0 = no limit) and counts the write
requests it receives, by resource type.

    python bench/latency_app.py PORT LATENCY CAPACITY

`GET /_bench/stats` answers the counts; `GET /_bench/timeline` how busy the app was: its requests in
flight sampled every 0.2 s and the time it took to answer (the latency included); a request with
the header `X-Bench: read` skips the latency and the counting (the bench's own checks of the app's
state).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from provisioner.engine.kit.servers import free_port, scim_app, serve_wsgi, wait_for_port
from tests.processes import stop_group

SAMPLE_S = 0.2
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
StartResponse = Callable[..., Any]


class LatencyFront:
    def __init__(self, inner: Any, latency: float, capacity: int):
        self.inner, self.latency, self.capacity = inner, latency, capacity
        self.lock = threading.Lock()
        self.in_flight = 0
        self.counts: Counter[str] = Counter()
        self.samples: list[int] = []  # in flight, every SAMPLE_S: whether the engines keep it busy
        self.answered = [0.0, 0.0]  # seconds spent answering, answers: the latency it really had

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        if path == "/_bench/stats":
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path == "/_bench/timeline":
            with self.lock:
                body = json.dumps({"in_flight": self.samples, "answer_s": self.answered}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if environ.get("HTTP_X_BENCH") == "read":
            return self.inner(environ, start_response)
        with self.lock:
            if self.capacity and self.in_flight >= self.capacity:
                self.counts["429"] += 1
                start_response("429 Too Many Requests", [("Retry-After", "1"), ("Content-Length", "0")])
                return [b""]
            self.in_flight += 1
            self.counts["requests"] += 1
            if method in WRITES:
                kind = "Users" if "/Users" in path else "Groups" if "/Groups" in path else "other"
                self.counts[f"{method} {kind}"] += 1
        started = time.monotonic()
        try:
            time.sleep(self.latency)
            return list(self.inner(environ, start_response))
        finally:
            with self.lock:
                self.in_flight -= 1
                self.answered[0] += time.monotonic() - started
                self.answered[1] += 1

    def sample(self, stop: threading.Event) -> None:
        while not stop.wait(SAMPLE_S):
            with self.lock:
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
    stop = threading.Event()
    front = LatencyFront(scim_app(), latency, capacity)
    threading.Thread(target=front.sample, args=(stop,), daemon=True).start()
    with serve_wsgi(front, port):
        stop.wait()  # until the bench ends the process


if __name__ == "__main__":
    main()
