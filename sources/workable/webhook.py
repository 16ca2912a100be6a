"""Verify a Workable webhook notice and name the records it is about.

Workable webhooks: https://workable.readme.io/reference/webhooks
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioner.sources.webhooks import Replays, fresh, hmac_hex, json_object, same_digest


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """`X-Workable-Signature` = hex HMAC-SHA256 of the body, keyed by the account token."""
    same_digest(hmac_hex(secret, body), headers.get("x-workable-signature"))
    data = json_object(body)
    if fired := data.get("fired_at"):
        fresh(fired, now, "fired_at")
    replays.once(f"workable:{data['id']}" if "event_type" in data and data.get("id") else None)
    candidate = data.get("data", data) if "event_type" in data else data  # an envelope, or a bare candidate
    return [str(candidate["id"])] if isinstance(candidate, dict) and candidate.get("id") else []
