"""Verify a Lever webhook notice and name the records it is about.

Lever webhooks: https://hire.lever.co/developer/documentation#webhooks
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioner.sources.webhooks import Replays, WebhookRejected, fresh, hmac_hex, json_object, same_digest


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """`signature` in the body = hex HMAC-SHA256 of `token` + `triggeredAt` (epoch ms)."""
    data = json_object(body)
    token, triggered = str(data.get("token") or ""), data.get("triggeredAt")
    if not token or triggered is None:
        raise WebhookRejected("no token or triggeredAt")
    same_digest(hmac_hex(secret, f"{token}{triggered}".encode()), str(data.get("signature") or ""))
    fresh(triggered, now, "triggeredAt")
    replays.once(f"lever:{token}")  # Lever's advice: remember tokens to refuse replays
    opportunity = (data.get("data") or {}).get("opportunityId")
    return [str(opportunity)] if opportunity else []
