"""/readyz is honest (issue 22): an engine that has work but records nothing for
`engine.stall_seconds` answers not ready, and ready again once it makes progress."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx

from provisioner.engine.kit.servers import scim_app, serve_wsgi
from provisioner.engine.runtime import views
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.http.app import http_app
from tests.conftest import make_config, person


class _Stuck:
    """A SCIM app whose creates hang until released: the engine has work and makes no progress."""

    def __init__(self, inner: Any):
        self.inner, self.release = inner, threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST":
            self.release.wait(60)
        return self.inner(environ, start_response)


async def _until(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout:.0f}s"
        await asyncio.sleep(0.1)


async def test_readyz_goes_unready_during_a_stall_and_ready_again_after(tmp_path):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(i) for i in range(3)]))
    app = _Stuck(scim_app())
    with serve_wsgi(app) as scim:
        config = make_config(
            f"sqlite:///{tmp_path / 's.db'}",
            scim.url,
            {"name": "hr", "type": "file", "path": str(people)},
            engine={"concurrency": 4, "stall_seconds": 1.5, "claim_seconds": 3},
            target={"timeout": 120},
        )
        try:
            async with Runtime(config) as runtime:
                client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=http_app(runtime, runtime.metrics)), base_url="http://e"
                )

                async def readyz() -> tuple[int, dict[str, Any]]:
                    answer = await client.get("/readyz")
                    return answer.status_code, answer.json()

                assert (await readyz())[0] == 200  # idle: nothing to do is not a stall
                await runtime.poll("hr")

                async def stalled() -> bool:
                    status, body = await readyz()
                    return status == 503 and body["progress"] is False and body["store"] is True

                await _until(stalled, "readyz to report the stall")
                metrics = (await client.get("/metrics")).text
                assert "provisioner_stalled 1.0" in metrics
                assert "provisioner_in_flight_events 3.0" in metrics

                async def listed_stalled() -> bool:  # what `provisioner status` shows (and exits 1 on)
                    return any(e.stalled for e in views.status(config, runtime.store).engines)

                await _until(listed_stalled, "status to list the engine as stalled")
                app.release.set()
                await runtime.wait_idle(timeout=60)
                await _until(lambda: _ready(readyz), "readyz to recover once events are recorded")
                await runtime.fleet.beat()
                [me] = views.status(config, runtime.store).engines
                assert me.id == runtime.owner and not me.stalled and me.recording_error is None
                await client.aclose()
        finally:
            app.release.set()


async def _ready(readyz: Any) -> bool:
    return bool((await readyz())[0] == 200)
