"""What a `provisioner serve` replica over a test's store shows: API answers and console pages,
over HTTP, logged in with the API token."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from provisioner.engine.config import Config
from provisioner.engine.kit.servers import serve_asgi
from provisioner.engine.runtime.http.app import http_app
from provisioner.engine.runtime.replica import Replica

TOKEN = "t0ken-for-the-api"


def served(config: Config, *paths: str) -> tuple[dict[str, Any], str]:
    """The JSON of each `/api/…` path, and the HTML of the other paths, one after the other."""
    config = config.model_copy(update={"api": config.api.model_validate({"token": TOKEN})})
    replica = Replica(config)
    try:
        with serve_asgi(http_app(replica, replica.metrics)) as server, httpx.Client(base_url=server.url) as client:
            api = {
                p: client.get(p, headers={"Authorization": f"Bearer {TOKEN}"}).json()
                for p in paths
                if p.startswith("/api/")
            }
            assert client.post("/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303
            pages = []
            for path in (p for p in paths if not p.startswith("/api/")):
                page = client.get(path)
                assert page.status_code == 200, page.text
                pages.append(page.text)
            return api, "\n".join(pages)
    finally:
        asyncio.run(replica.parts.aclose())
