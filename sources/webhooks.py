"""What every vendor's webhook verifier shares: constant-time digests, signed timestamps, replays.

Each verifier (`provisioner/sources/<vendor>/webhook.py`, a `verify` function) takes the shared
secret, the request headers and the raw body, and returns the remote ids the notice is about; it
raises `WebhookRejected` for anything it cannot trust. The reason stays in our log; the sender
only ever sees a bare 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from provisioner.sources import signature_headers, webhook_verifier

TOLERANCE = 300.0  # seconds a signed timestamp may lag or lead our clock


class WebhookRejected(Exception):
    """Signature missing or wrong, a stale timestamp, a replay, or a body we cannot read."""


def hmac_hex(secret: str, message: bytes | str) -> str:
    """Lowercase hex HMAC-SHA256, the digest every vendor here signs with (the emulators too)."""
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def same_digest(expected: str, given: str | None) -> None:
    # Constant-time, so the comparison leaks nothing about how much of a forgery was right.
    if not given or not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise WebhookRejected("signature does not match")


def fresh(stamp: Any, now: float, what: str) -> None:
    """A signed timestamp (epoch s or ms, or ISO-8601) within TOLERANCE of now, or a rejection."""
    try:
        moment = epoch(str(stamp))
    except ValueError:
        raise WebhookRejected(f"unreadable {what}") from None
    if abs(now - moment) > TOLERANCE:
        raise WebhookRejected(f"timestamp {moment:.0f} is {now - moment:.0f}s away from now (replay?)")


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # deep nesting is bad input, not our failure
        raise WebhookRejected("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejected("body is not a JSON object")
    return data


def body_id(vendor: str, body: bytes) -> str:
    """The replay id of a notice whose own id is not covered by the signature: what was signed."""
    return f"{vendor}:sha256:{hashlib.sha256(body).hexdigest()}"


def presigned(kind: str, headers: Mapping[str, str]) -> None:
    """Refuse a notice on its headers alone when its vendor signs in headers and they are absent,
    so an unsigned body is never read."""
    for name in signature_headers(kind):
        if not headers.get(name):
            raise WebhookRejected(f"no {name} header")


def epoch(value: str) -> float:
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        number = float(value)
        return number / 1000 if number > 1e12 else number
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00")).timestamp()


class Replays:
    """Ids of notices already accepted; a second delivery of one is refused. In memory (bounded)
    by default; `first` can be a shared record (the store) so every engine process agrees."""

    def __init__(self, size: int = 10000, first: Callable[[str], bool] | None = None):
        self.size = size
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.first = first

    def once(self, key: str) -> None:
        if self.first is not None:
            if not self.first(key):
                raise WebhookRejected(f"notice {key} was already accepted (replay)")
            return
        if key in self.seen:
            raise WebhookRejected(f"notice {key} was already accepted (replay)")
        self.seen[key] = None
        if len(self.seen) > self.size:
            self.seen.popitem(last=False)


def verify(
    kind: str, secret: str, headers: Mapping[str, str], body: bytes, replays: Replays, now: float | None = None
) -> list[str]:
    check = webhook_verifier(kind)
    if check is None:
        raise WebhookRejected(f"sources of type {kind} take no webhooks")
    return check(secret, headers, body, time.time() if now is None else now, replays)
