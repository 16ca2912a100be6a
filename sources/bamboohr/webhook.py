"""Verify a Bamboohr webhook notice and name the records it is about.

BambooHR webhooks: https://documentation.bamboohr.com/docs/webhooks
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from provisioner.sources.webhooks import Replays, WebhookRejected, fresh, hmac_hex, json_object, same_digest

SIGNED_BY = ("x-bamboohr-signature", "x-bamboohr-timestamp")


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """HMAC-SHA256 of the raw body followed by the `X-BambooHR-Timestamp` value, lowercase hex."""
    stamp = headers.get("x-bamboohr-timestamp")
    if not stamp:
        raise WebhookRejected("no X-BambooHR-Timestamp")
    same_digest(hmac_hex(secret, body + stamp.encode()), headers.get("x-bamboohr-signature"))
    fresh(stamp, now, "X-BambooHR-Timestamp")
    data = json_object(body)
    replays.once(f"bamboohr:{stamp}:{hashlib.sha256(body).hexdigest()}")
    if "employees" in data:  # the legacy field-based payload
        return [str(e["id"]) for e in data["employees"] if isinstance(e, dict) and e.get("id")]
    employee = (data.get("data") or {}).get("employeeId")
    return [str(employee)] if employee else []
