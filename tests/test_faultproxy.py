"""tests/faultproxy.py over real HTTP: an upstream and the proxy, each under uvicorn in a thread."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.faultproxy import FaultProxy, fault_proxy

pytestmark = pytest.mark.fast

DEADLINE = 10.0


class _Served:
    def __init__(self, app: Any) -> None:
        # Handing uvicorn the already-bound socket leaves no window for another process to take the port.
        # An explicit IPPROTO_TCP: asyncio only sets TCP_NODELAY when proto says TCP, and without it
        # Nagle plus delayed ACKs cost ~40 ms per request.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> _Served:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), "uvicorn startup")
        assert self.server.started, "uvicorn exited during startup"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=DEADLINE)
        self.sock.close()
        assert not self.thread.is_alive(), "uvicorn did not stop"


def wait_until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Polls a condition that has no event to wait on, failing loudly at the deadline."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# -- the upstream -------------------------------------------------------------------------------
class Upstream:
    def __init__(self) -> None:
        self.hits: Counter[tuple[str, str]] = Counter()
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        self.app = Starlette(
            routes=[
                Route("/slow", self.slow),
                Route("/big", self.big),
                Route("/{rest:path}", self.echo, methods=methods),
            ]
        )

    async def echo(self, request: Request) -> Response:
        self.hits[(request.method, request.url.path)] += 1
        body = await request.body()
        status = int(request.query_params.get("status", "200"))
        seen = {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "body": body.decode(),
            "headers": dict(request.headers),
        }
        return JSONResponse(seen, status_code=status, headers={"ETag": 'W/"3"', "X-Upstream": "yes"})

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(1.0)
        return Response("late")

    async def big(self, request: Request) -> Response:
        payload = gzip.compress(b"x" * 5000)  # compressed by hand: the proxy must hand back plain bytes
        return Response(payload, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    up = Upstream()
    with _Served(up.app) as served:
        yield up, served.url


@pytest.fixture
def proxied(upstream: tuple[Upstream, str]) -> Iterator[Callable[..., tuple[FaultProxy, httpx.Client]]]:
    """Starts a proxy with the given options in front of the shared upstream; stops it afterwards."""
    stack: list[tuple[_Served, httpx.Client]] = []
    upstream[0].hits.clear()

    def start(**options: Any) -> tuple[FaultProxy, httpx.Client]:
        proxy = fault_proxy(upstream[1], **options)
        served = _Served(proxy).__enter__()
        client = httpx.Client(base_url=served.url, timeout=DEADLINE)
        stack.append((served, client))
        return proxy, client

    yield start
    for served, client in stack:
        client.close()
        served.__exit__()


# -- tests --------------------------------------------------------------------------------------
def test_closed_window_forwards_faithfully(proxied: Callable[..., tuple[FaultProxy, httpx.Client]]) -> None:
    proxy, client = proxied()
    r = client.post(
        "/scim/v2/Users?attributes=userName&filter=userName%20eq%20%22a%20b%22",
        content=b'{"userName":"a b"}',
        headers={
            "Authorization": "Bearer t0k",
            "If-Match": 'W/"2"',
            "Content-Type": "application/scim+json",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "drop me",
            "X-Keep": "keep me",
        },
    )
    assert r.status_code == 200 and r.headers["x-upstream"] == "yes" and r.headers["etag"] == 'W/"3"'
    seen = r.json()
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/scim/v2/Users", '{"userName":"a b"}')
    assert seen["query"] == "attributes=userName&filter=userName%20eq%20%22a%20b%22"
    sent = seen["headers"]
    assert sent["authorization"] == "Bearer t0k" and sent["if-match"] == 'W/"2"'
    assert sent["content-type"] == "application/scim+json" and sent["x-keep"] == "keep me"
    assert "x-hop" not in sent and sent["host"] == proxy.upstream.netloc.decode()

    assert client.delete("/scim/v2/Users/42?status=404").status_code == 404
    big = client.get("/big")
    assert big.status_code == 200 and big.content == b"x" * 5000 and "content-encoding" not in big.headers
    assert proxy.stats == {
        "seen": 3,
        "forwarded": 3,
        "faulted": 0,
        "upstream_errors": 0,
        "503": 0,
        "429": 0,
        "500": 0,
        "forward_500": 0,
    }


@pytest.mark.parametrize("kind,status,retry_after", [("503", 503, "4"), ("429", 429, "4"), ("500", 500, None)])
def test_refusals_answer_without_reaching_upstream(
    proxied: Callable[..., tuple[FaultProxy, httpx.Client]],
    upstream: tuple[Upstream, str],
    kind: str,
    status: int,
    retry_after: str | None,
) -> None:
    proxy, client = proxied(share=1.0, kinds=(kind,), retry_after=4)
    proxy.open_window()
    assert proxy.active
    r = client.post("/scim/v2/Users", json={"userName": "x"})
    assert r.status_code == status and r.headers.get("retry-after") == retry_after
    assert r.headers["content-type"] == "application/scim+json"
    assert r.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": f"faultproxy injected {kind}",
    }
    assert upstream[0].hits == {}
    proxy.close_window()
    assert not proxy.active and client.post("/scim/v2/Users", json={}).status_code == 200
    assert upstream[0].hits == {("POST", "/scim/v2/Users"): 1}
    stats = proxy.stats
    assert (stats["seen"], stats["forwarded"], stats["faulted"], stats[kind]) == (2, 1, 1, 1)


def test_forward_500_applies_upstream_but_loses_answer(
    proxied: Callable[..., tuple[FaultProxy, httpx.Client]], upstream: tuple[Upstream, str]
) -> None:
    proxy, client = proxied(share=1.0, kinds=("forward_500",))
    proxy.open_window()
    r = client.put("/scim/v2/Users/7", json={"userName": "y"})
    assert r.status_code == 500 and "retry-after" not in r.headers and "x-upstream" not in r.headers
    assert upstream[0].hits == {("PUT", "/scim/v2/Users/7"): 1}
    assert proxy.stats["forward_500"] == 1 and proxy.stats["forwarded"] == 0


def test_share_is_roughly_honoured_and_reproducible(proxied: Callable[..., tuple[FaultProxy, httpx.Client]]) -> None:
    statuses = []
    for _ in range(2):
        proxy, client = proxied(share=0.3, seed=11)
        proxy.open_window()
        statuses.append([client.get(f"/scim/v2/Users/{i}").status_code for i in range(200)])
        stats = proxy.stats
        assert 0.15 * 200 <= stats["faulted"] <= 0.45 * 200
        assert stats["seen"] == 200 == stats["forwarded"] + stats["faulted"]
        assert stats["faulted"] == sum(stats[k] for k in ("503", "429", "500", "forward_500"))
        assert all(stats[k] > 0 for k in ("503", "429", "500", "forward_500"))
        assert statuses[-1].count(200) == stats["forwarded"]
    assert statuses[0] == statuses[1]  # same seed, same faults
    proxy.reset_stats()
    assert set(proxy.stats.values()) == {0}


def test_timed_window_closes_by_itself(proxied: Callable[..., tuple[FaultProxy, httpx.Client]]) -> None:
    proxy, client = proxied(share=1.0, kinds=("503",))
    proxy.open_window(0.3)
    assert client.get("/scim/v2/Users").status_code == 503
    # No sleep: keep asking until a request gets through, which only the window's end allows.
    end = time.monotonic() + DEADLINE
    while (status := client.get("/scim/v2/Users").status_code) == 503:
        assert time.monotonic() < end, "window never closed"
    assert status == 200 and not proxy.active


def test_fault_paths_limit_the_blast_radius(proxied: Callable[..., tuple[FaultProxy, httpx.Client]]) -> None:
    proxy, client = proxied(share=1.0, kinds=("500",), fault_paths=("/scim/v2/Groups",))
    proxy.open_window()
    assert client.get("/scim/v2/Users").status_code == 200
    assert client.patch("/scim/v2/Groups/1", json={}).status_code == 500


def test_upstream_timeout_is_504(proxied: Callable[..., tuple[FaultProxy, httpx.Client]]) -> None:
    proxy, client = proxied(timeout=0.2)
    assert client.get("/slow").status_code == 504
    assert proxy.stats["upstream_errors"] == 1


async def test_concurrent_requests_share_one_client(proxied: Callable[..., tuple[FaultProxy, httpx.Client]]) -> None:
    proxy, sync_client = proxied()
    async with httpx.AsyncClient(base_url=str(sync_client.base_url)) as client:
        answers = await asyncio.gather(*(client.get(f"/scim/v2/Users/{i}") for i in range(50)))
    assert [r.json()["path"] for r in answers] == [f"/scim/v2/Users/{i}" for i in range(50)]
    assert proxy.stats["forwarded"] == 50
