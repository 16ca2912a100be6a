"""Verify an Ashby webhook notice and name the records it is about.

Ashby webhooks: https://developers.ashbyhq.com/docs/authenticating-webhooks (signature) and
https://developers.ashbyhq.com/reference/webhooks (payloads: `{"action", "data"}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.sources.webhooks import Replays, WebhookRejected, body_id, hmac_hex, json_object, same_digest

SIGNED_BY = ("ashby-signature",)


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """`Ashby-Signature: sha256=<hex>`, HMAC-SHA256 of the raw body keyed by the webhook's secret
    token. The signature is optional at Ashby; here a webhook without one is refused."""
    algorithm, _, digest = (headers.get("ashby-signature") or "").partition("=")
    if algorithm.strip().lower() != "sha256":
        raise WebhookRejected("no sha256= Ashby-Signature header")
    same_digest(hmac_hex(secret, body), digest)
    data = json_object(body)
    # Ashby signs no timestamp or delivery id: the signed body itself is the notice's identity.
    replays.once(body_id("ashby", body))
    payload = _object(data.get("data"))
    # application*, candidateHire, candidateStageChange carry the application; offer* its id.
    found = _object(payload.get("application")).get("id") or _object(payload.get("offer")).get("applicationId")
    return [str(found)] if found else []


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
