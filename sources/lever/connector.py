"""`type: lever` — hired candidates from the Lever ATS become `pending` Workers (pre-hires).

An opportunity archived with a reason of type `hired` is a hire. Its posting gives title,
department, team, location and commitment; its offer's `anticipated_start_date` the start date.
Facts: Lever's API documentation (https://hire.lever.co/developer/documentation).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from provisioner.engine.kit.paging import TokenPaging
from provisioner.sources.base import HttpSource, HttpSourceSettings, epoch_ms
from provisioner.sources.values import employment_type

LIST = TokenPaging(items="data", next="next", has_more="hasNext", param="offset")


class LeverSettings(HttpSourceSettings):
    base_url: str = "https://api.lever.co/v1"
    api_key: SecretStr | None = None


class LeverSource(HttpSource):
    vendor = "Lever"
    settings_model = LeverSettings
    credential_hint = "api_key (the Basic username) or an auth block (oauth_refresh_token)"
    # The key is the Basic username; the password stays blank.
    key_field, key_auth = "api_key", {"type": "basic", "username": "{key}", "password": ""}
    # Lever meters 10/s per key with bursts to 20; we stay a tenth under, since requests bunch up
    # on the way and arrive closer together than they were sent.
    default_rate, default_burst = "9/s", 18

    def __init__(self, name: str, settings: LeverSettings):
        super().__init__(name, settings)
        self._hired: set[str] | None = None

    async def _hired_reasons(self) -> set[str]:
        if self._hired is None:
            reasons = await self.get_json("/archive_reasons", {"type": "hired"})
            self._hired = {r["id"] for r in reasons["data"] if r.get("type") == "hired"}
        return self._hired

    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        self._hired = None  # fresh per read: the archive reasons may change
        hired = await self._hired_reasons()
        params: dict[str, Any] = {"archived": "true", "limit": min(self.settings.page_size, 100)}
        if since is not None:
            params["updated_at_start"] = int(since.timestamp() * 1000)
        async for page in self.pages("/opportunities", LIST, params):
            mine = [o for o in page if (o.get("archived") or {}).get("reason") in hired]
            for record in await self.each(mine, self._enrich):
                yield record

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        found = await self.get_json(f"/opportunities/{remote_id}", missing_ok=True)
        if found is None or (found["data"].get("archived") or {}).get("reason") not in await self._hired_reasons():
            return None  # deleted, or no longer a hire
        return await self._enrich(found["data"])

    async def _enrich(self, opportunity: dict[str, Any]) -> dict[str, Any]:
        oid = opportunity["id"]
        applications = await self.get_json(f"/opportunities/{oid}/applications", missing_ok=True) or {"data": []}
        posting_id = next((a.get("posting") for a in applications["data"] if a.get("posting")), None)
        offers = await self.get_json(f"/opportunities/{oid}/offers", missing_ok=True) or {"data": []}
        posting = (await self.shared(f"/postings/{posting_id}")).get("data") if posting_id else None
        return {
            **opportunity,
            "_posting": posting or {},
            "_offer": max(offers["data"], key=lambda o: o.get("createdAt") or 0, default={}),
        }

    def to_worker(self, record: dict[str, Any]) -> dict[str, Any]:
        first, _, last = (record.get("name") or "").strip().partition(" ")
        posting = record["_posting"]
        categories = posting.get("categories") or {}
        start = next(
            (
                f.get("value")
                for f in record["_offer"].get("fields", [])
                if f.get("identifier") == "anticipated_start_date"
            ),
            None,
        )
        emails = record.get("emails") or []
        commitment = (categories.get("commitment") or "").strip().lower()
        return {
            "first_name": first or None,
            "last_name": last or None,
            "display_name": record.get("name"),
            "personal_email": emails[0] if emails else None,
            "title": posting.get("text"),
            "department": categories.get("department"),
            "team": categories.get("team"),
            "location": categories.get("location"),
            "employment_type": employment_type(commitment),
            "status": "pending",
            "start_date": when.date() if (when := epoch_ms(start)) is not None else None,
            "updated_at": epoch_ms(record.get("updatedAt")),
        }
