"""`type: workable` — candidates in the `hired` stage become `pending` Workers (pre-hires).

The list gives a reduced candidate, so each hire is read in full (`/candidates/{id}`) and its job
(`/jobs/{shortcode}`, once per read) gives title, department, location and employment type.

The `stage` list filter takes a stage *slug* (`hired`) while a candidate's `stage` holds the stage's
display *name* ("Hired", or whatever the account renamed it to); `GET /stages` relates the two
(https://workable.readme.io/reference/stages, https://workable.readme.io/reference/job-candidates-index).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from provisioner.engine.kit.jinja import slug
from provisioner.engine.kit.paging import NextLinkPaging, PagingError
from provisioner.sources.base import HttpSource, HttpSourceSettings, iso_utc
from provisioner.sources.values import employment_type, iso_datetime

LIST = NextLinkPaging(items="candidates", next="paging.next")


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

    async def _in_stage(self, candidate: dict[str, Any]) -> bool:
        """The candidate's stage is the configured one, by slug, by kind, or by any display name
        `GET /stages` gives that slug (an account may rename "Hired" to "Offer Accepted – Hired")."""
        wanted, shown = slug(self.stage), str(candidate.get("stage") or "")
        if wanted in (slug(candidate.get("stage_kind")), slug(shown)):
            return True
        try:
            stages = (await self.shared("/stages")).get("stages") or []
        except PagingError:  # a token without r_jobs: slug and kind above are all we can go by
            return False
        names = {slug(s.get("name")) for s in stages if wanted in (slug(s.get("slug")), slug(s.get("kind")))}
        return slug(shown) in names

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
        if not candidate or candidate.get("disqualified") or not await self._in_stage(candidate):
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
