"""Headers every answer of the engine's HTTP server carries: the console may not be framed (no
clickjacking of its POST buttons), loads nothing from elsewhere, and nothing it shows (personal
data) is kept in a browser or proxy cache."""

from __future__ import annotations

from provisioner.engine.runtime.bodies import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_RAW = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


def secured(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in _RAW if h[0] not in given)]
            await send(message)

        await app(scope, receive, sending)

    return wrapped
