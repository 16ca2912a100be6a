"""Verify a Greenhouse webhook notice and name the records it is about.

Greenhouse web hooks: https://developers.greenhouse.io/webhooks.html
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioner.sources.webhooks import Replays, WebhookRejected, body_id, hmac_hex, json_object, same_digest

SIGNED_BY = ("signature",)


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, replays: Replays) -> list[str]:
    """`Signature: sha256 <hex>` over the entire raw body, exactly as sent."""
    scheme, _, digest = (headers.get("signature") or "").partition(" ")
    if scheme.lower() != "sha256":
        raise WebhookRejected("no sha256 Signature header")
    same_digest(hmac_hex(secret, body), digest)
    data = json_object(body)
    # Greenhouse signs no timestamp, and its Greenhouse-Event-ID header is not signed (anyone can
    # change it): the signed body itself is the notice's identity.
    replays.once(body_id("greenhouse", body))
    application = (data.get("payload") or {}).get("application") or {}
    candidate = (application.get("candidate") or {}).get("id") or application.get("candidate_id")
    return [str(candidate)] if candidate else []
