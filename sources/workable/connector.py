"""`type: workable` — candidates in the `hired` stage become `pending` Workers (pre-hires).

The list gives a reduced candidate, so each hire is read in full (`/candidates/{id}`) and its job
(`/jobs/{shortcode}`, once per read) gives title, department, location and employment type.
Facts: shared/reference/workable-api-guide.txt, hris-api-facts.md §5.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from provisioner.engine.kit.paging import Paging
from provisioner.sources.base import HttpSource, HttpSourceSettings, iso_utc
from provisioner.sources.values import employment_type, iso_datetime

LIST = Paging(style="next_link", items="candidates", next="paging.next")


class WorkableSettings(HttpSourceSettings):
    token: SecretStr | None = None
    stage: str = "hired"


class WorkableSource(HttpSource):
    vendor = "Workable"
    settings_model = WorkableSettings
    credential_hint = "token (an account token) or an auth block"
    key_field, key_auth = "token", {"type": "bearer", "token": "{key}"}
    # An account token may send 10 requests per rolling 10 s; an OAuth or partner token 50
    # (set rate_limit: 50/10s). Metered a little wider than the window, for arrival jitter.
    default_rate = "10/10.5s"

    def __init__(self, name: str, settings: WorkableSettings):
        super().__init__(name, settings)
        self.stage = settings.stage

    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {"stage": self.stage, "limit": min(self.settings.page_size, 100)}
        if since is not None:
            params["updated_after"] = iso_utc(since)
        async for page in self.pages("/candidates", LIST, params):
            for record in await self.each(page, lambda c: self._full(c["id"])):
                if record is not None:
                    yield record

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        return await self._full(remote_id)

    async def _full(self, candidate_id: str) -> dict[str, Any] | None:
        found = await self.get_json(f"/candidates/{candidate_id}", missing_ok=True)
        candidate = (found or {}).get("candidate")
        if not candidate or candidate.get("stage") != self.stage or candidate.get("disqualified"):
            return None  # deleted, moved on, or disqualified since the listing
        shortcode = (candidate.get("job") or {}).get("shortcode")
        return {**candidate, "_job": await self.shared(f"/jobs/{shortcode}") if shortcode else {}}

    def to_worker(self, record: dict[str, Any]) -> dict[str, Any]:
        job = record["_job"]
        location = job.get("location") or {}
        kind = (job.get("employment_type") or "").strip().lower()
        updated = record.get("updated_at")
        return {
            "first_name": record.get("firstname"),
            "last_name": record.get("lastname"),
            "display_name": record.get("name"),
            "personal_email": record.get("email"),
            "title": job.get("title") or (record.get("job") or {}).get("title"),
            "department": job.get("department"),
            "location": location.get("city") or location.get("location_str"),
            "country": location.get("country_code"),
            "employment_type": employment_type(kind),
            "status": "pending",
            "updated_at": iso_datetime(updated),
        }
