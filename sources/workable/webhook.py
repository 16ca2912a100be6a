"""Verify a Workable webhook notice and name the records it is about.

Workable webhooks: https://workable.readme.io/reference/webhooks
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioner.sources.webhooks import Replays, body_id, fresh, hmac_hex, json_object, same_digest

SIGNED_BY = ("x-workable-signature",)


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """`X-Workable-Signature` = hex HMAC-SHA256 of the body, keyed by the account token."""
    same_digest(hmac_hex(secret, body), headers.get("x-workable-signature"))
    data = json_object(body)
    if fired := data.get("fired_at"):
        fresh(fired, now, "fired_at")
    # The signature covers the whole body, so an id in it is trusted; a notice without one is
    # known by its digest.
    signed_id = data.get("id") if "event_type" in data else None
    replays.once(f"workable:{signed_id}" if signed_id else body_id("workable", body))
    candidate = data.get("data", data) if "event_type" in data else data  # an envelope, or a bare candidate
    return [str(candidate["id"])] if isinstance(candidate, dict) and candidate.get("id") else []
