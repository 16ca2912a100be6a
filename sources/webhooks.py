"""Webhook signature schemes, one function per vendor: verify, refuse replays, name the records.

Each verifier takes the shared secret, the request headers and the raw body, and returns the
remote ids the notice is about; it raises `WebhookRejected` for anything it cannot trust. The
reason stays in our log; the sender only ever sees a bare 401.
Facts: shared/reference/hris-api-facts.md §1 (BambooHR), §3 (Greenhouse), §5 (Lever, Workable).
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

TOLERANCE = 300.0  # seconds a signed timestamp may lag or lead our clock


class WebhookRejected(Exception):
    """Signature missing or wrong, a stale timestamp, a replay, or a body we cannot read."""


def hmac_hex(secret: str, message: bytes | str) -> str:
    """Lowercase hex HMAC-SHA256, the digest every vendor here signs with (the emulators too)."""
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _same(expected: str, given: str | None) -> None:
    # Constant-time, so the comparison leaks nothing about how much of a forgery was right.
    if not given or not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise WebhookRejected("signature does not match")


def _fresh(stamp: Any, now: float, what: str) -> None:
    """A signed timestamp (epoch s or ms, or ISO-8601) within TOLERANCE of now, or a rejection."""
    try:
        moment = _epoch(str(stamp))
    except ValueError:
        raise WebhookRejected(f"unreadable {what}") from None
    if abs(now - moment) > TOLERANCE:
        raise WebhookRejected(f"timestamp {moment:.0f} is {now - moment:.0f}s away from now (replay?)")


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookRejected("body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejected("body is not a JSON object")
    return data


def _epoch(value: str) -> float:
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

    def once(self, key: str | None) -> None:
        if not key:
            return
        if self.first is not None:
            if not self.first(key):
                raise WebhookRejected(f"notice {key} was already accepted (replay)")
            return
        if key in self.seen:
            raise WebhookRejected(f"notice {key} was already accepted (replay)")
        self.seen[key] = None
        if len(self.seen) > self.size:
            self.seen.popitem(last=False)


def bamboohr(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """HMAC-SHA256 of the raw body followed by the `X-BambooHR-Timestamp` value, lowercase hex."""
    stamp = headers.get("x-bamboohr-timestamp")
    if not stamp:
        raise WebhookRejected("no X-BambooHR-Timestamp")
    _same(hmac_hex(secret, body + stamp.encode()), headers.get("x-bamboohr-signature"))
    _fresh(stamp, now, "X-BambooHR-Timestamp")
    data = _json(body)
    replays.once(f"bamboohr:{stamp}:{hashlib.sha256(body).hexdigest()}")
    if "employees" in data:  # the legacy field-based payload
        return [str(e["id"]) for e in data["employees"] if isinstance(e, dict) and e.get("id")]
    employee = (data.get("data") or {}).get("employeeId")
    return [str(employee)] if employee else []


def lever(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """`signature` in the body = hex HMAC-SHA256 of `token` + `triggeredAt` (epoch ms)."""
    data = _json(body)
    token, triggered = str(data.get("token") or ""), data.get("triggeredAt")
    if not token or triggered is None:
        raise WebhookRejected("no token or triggeredAt")
    _same(hmac_hex(secret, f"{token}{triggered}".encode()), str(data.get("signature") or ""))
    _fresh(triggered, now, "triggeredAt")
    replays.once(f"lever:{token}")  # Lever's advice: remember tokens to refuse replays
    opportunity = (data.get("data") or {}).get("opportunityId")
    return [str(opportunity)] if opportunity else []


def greenhouse(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """`Signature: sha256 <hex>` over the entire raw body, exactly as sent."""
    scheme, _, digest = (headers.get("signature") or "").partition(" ")
    if scheme.lower() != "sha256":
        raise WebhookRejected("no sha256 Signature header")
    _same(hmac_hex(secret, body), digest)
    data = _json(body)
    replays.once(headers.get("greenhouse-event-id"))  # Greenhouse signs no timestamp: ids guard replays
    application = (data.get("payload") or {}).get("application") or {}
    candidate = (application.get("candidate") or {}).get("id") or application.get("candidate_id")
    return [str(candidate)] if candidate else []


def workable(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """`X-Workable-Signature` = hex HMAC-SHA256 of the body, keyed by the account token."""
    _same(hmac_hex(secret, body), headers.get("x-workable-signature"))
    data = _json(body)
    if fired := data.get("fired_at"):
        _fresh(fired, now, "fired_at")
    replays.once(f"workable:{data['id']}" if "event_type" in data and data.get("id") else None)
    candidate = data.get("data", data) if "event_type" in data else data  # an envelope, or a bare candidate
    return [str(candidate["id"])] if isinstance(candidate, dict) and candidate.get("id") else []


Verifier = Callable[[str, Mapping[str, str], bytes, float, Replays], list[str]]
VERIFIERS: dict[str, Verifier] = {"bamboohr": bamboohr, "lever": lever, "greenhouse": greenhouse,
                                  "workable": workable}


def verify(kind: str, secret: str, headers: Mapping[str, str], body: bytes, replays: Replays,
           now: float | None = None) -> list[str]:
    if kind not in VERIFIERS:
        raise WebhookRejected(f"sources of type {kind} take no webhooks")
    return VERIFIERS[kind](secret, headers, body, time.time() if now is None else now, replays)
