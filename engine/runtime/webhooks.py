"""The webhook endpoint `provisioner run` serves: `POST /webhooks/{source}`.

A verified notice answers 202 at once; the records it names are then fetched from the vendor and
go through the same diff as a poll, so a webhook can only ever make us look sooner, never decide
differently. Anything unverified gets a bare 401: the reason is logged here, not told to the sender.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from provisioner.engine.runtime.protocol import Served
from provisioner.sources import webhook_verifier
from provisioner.sources.webhooks import Replays, WebhookRejected, verify

log = logging.getLogger("provisioner.webhooks")
MAX_BODY = 1 << 20


def webhook_routes(runtime: Served) -> list[Route]:
    configs = {s.name: s for s in runtime.config.sources}
    replays = Replays(first=runtime.store.sources.first_notice)  # shared by every engine process
    tasks: set[asyncio.Task[Any]] = set()

    async def fetch(source: str, ids: list[str]) -> None:
        try:
            diff = await runtime.poll(source, only=ids)
            log.info("webhook for %s: %d records fetched, %d events", source, len(ids), len(diff.events))
        except Exception as exc:  # the next scheduled poll picks the change up anyway
            log.error("webhook for %s: fetching %s failed: %s", source, ids, exc)

    async def receive(request: Request) -> Response:
        name = request.path_params["source"]
        config = configs.get(name)
        secret = (config.settings().get("webhook_secret") if config else None) or None
        if config is None or secret is None or webhook_verifier(config.type) is None:
            return PlainTextResponse("not found", status_code=404)
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("too large", status_code=413)
        try:
            ids = verify(config.type, str(secret), request.headers, body, replays)
        except WebhookRejected as exc:
            log.warning("webhook for %s rejected: %s", name, exc)
            return PlainTextResponse("unauthorized", status_code=401)
        if ids:
            task = asyncio.create_task(fetch(name, ids))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return JSONResponse({"accepted": len(ids)}, status_code=202)

    return [Route("/webhooks/{source}", receive, methods=["POST"])]


def webhook_app(runtime: Served) -> Starlette:
    """The webhook endpoint alone, with /healthz (the engine serves it within its one HTTP app)."""

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "unapplied_events": runtime.store.outbox.pending_count()})

    return Starlette(routes=[*webhook_routes(runtime), Route("/healthz", health)])
