"""The webhook endpoint `provisioner run` serves: `POST /webhooks/{source}`.

A verified notice answers 202 at once; the records it names are then fetched from the vendor and
go through the same diff as a poll, so a webhook can only ever make us look sooner, never decide
differently. Anything unverified gets a bare 401: the reason is logged here, not told to the sender.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from provisioner.engine.runtime.bodies import WEBHOOK_BODY, BodyTooLarge, read_bounded
from provisioner.engine.runtime.notices import Notices
from provisioner.engine.runtime.protocol import Served
from provisioner.sources import webhook_verifier
from provisioner.sources.webhooks import Replays, WebhookRejected, presigned, verify

log = logging.getLogger("provisioner.webhooks")


def webhook_routes(runtime: Served) -> list[Route]:
    configs = {s.name: s for s in runtime.config.sources}
    replays = Replays(first=runtime.store.sources.first_notice)  # shared by every engine process

    async def fetch(source: str, ids: list[str]) -> None:
        try:
            diff = await runtime.poll(source, only=ids)
            log.info("webhook for %s: %d records fetched, %d events", source, len(ids), len(diff.events))
        except Exception as exc:  # the next scheduled poll picks the change up anyway
            log.error("webhook for %s: fetching %d records failed: %s", source, len(ids), exc)

    notices = Notices(fetch)

    async def receive(request: Request) -> Response:
        name = request.path_params["source"]
        config = configs.get(name)
        secret = (config.settings().get("webhook_secret") if config else None) or None
        if config is None or secret is None or webhook_verifier(config.type) is None:
            return PlainTextResponse("not found", status_code=404)
        try:
            # Vendors that sign in headers are refused on the headers alone, before any body is read.
            presigned(config.type, request.headers)
            body = await read_bounded(request, WEBHOOK_BODY)
            ids = verify(config.type, str(secret), request.headers, body, replays)
        except WebhookRejected as exc:
            log.warning("webhook for %s rejected: %s", name, exc)
            return PlainTextResponse("unauthorized", status_code=401)
        except BodyTooLarge:
            return PlainTextResponse("too large", status_code=413)
        except ClientDisconnect:
            return PlainTextResponse("", status_code=400)
        if ids:
            notices.add(name, ids)
        return JSONResponse({"accepted": len(ids)}, status_code=202)

    return [Route("/webhooks/{source}", receive, methods=["POST"])]


def webhook_app(runtime: Served) -> Starlette:
    """The webhook endpoint alone, with /healthz (the engine serves it within its one HTTP app)."""

    async def health(request: Request) -> Response:
        pending = await asyncio.to_thread(runtime.store.outbox.pending_count)  # a round trip: off the event loop
        return JSONResponse({"status": "ok", "unapplied_events": pending})

    return Starlette(routes=[*webhook_routes(runtime), Route("/healthz", health)])
