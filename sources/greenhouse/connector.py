"""`type: greenhouse` — hired applications in Greenhouse Harvest become `pending` Workers.

One Worker per candidate (`greenhouse:<candidate id>`); the current offer gives the start date
and employment type, the job its title, department and office. `version: v3` (the default; v1/v2
were retired on 2026-08-31 by Greenhouse's notice) uses OAuth client credentials and cursors;
`version: v1` uses the API token as the Basic username. Both page with `Link: rel="next"`.
Facts: Greenhouse's Harvest API documentation (https://developers.greenhouse.io/harvest.html).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from pydantic import SecretStr

from provisioner.engine.kit.auth import AuthScheme, BasicAuth, ClientCredentialsAuth
from provisioner.engine.kit.paging import LinkHeaderPaging
from provisioner.sources.base import HttpSource, HttpSourceSettings, iso_utc
from provisioner.sources.values import employment_type, iso_datetime

LIST = LinkHeaderPaging(items="@")
SINCE_PARAM = {"v1": "last_activity_after", "v3": "last_activity_at[gte]"}


class GreenhouseSettings(HttpSourceSettings):
    base_url: str = "https://harvest.greenhouse.io"
    version: Literal["v1", "v3"] = "v3"
    api_key: SecretStr | None = None  # v1
    client_id: str | None = None  # v3
    client_secret: SecretStr | None = None
    token_url: str = "https://auth.greenhouse.io/token"


class GreenhouseSource(HttpSource):
    vendor = "Greenhouse"
    settings_model = GreenhouseSettings
    default_rate = "50/10.5s"  # the documented example limit per 10 s window

    def __init__(self, name: str, settings: GreenhouseSettings):
        super().__init__(name, settings)
        self.version = settings.version

    @classmethod
    def auth_for(cls, s: HttpSourceSettings) -> AuthScheme:
        assert isinstance(s, GreenhouseSettings)
        if s.auth.type != "none":
            return s.auth
        if s.version == "v1":
            if not s.api_key:
                raise ValueError("greenhouse version v1 needs api_key")
            return BasicAuth(username=s.api_key)
        if not (s.client_id and s.client_secret):
            raise ValueError("greenhouse version v3 needs client_id and client_secret")
        return ClientCredentialsAuth(
            token_url=s.token_url,
            client_id=s.client_id,
            client_secret=s.client_secret,
            client_auth="basic",
        )

    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {"status": "hired", "per_page": min(self.settings.page_size, 500)}
        if since is not None:
            params[SINCE_PARAM[self.version]] = iso_utc(since)
        seen: set[int] = set()
        async for page in self.pages(f"/{self.version}/applications", LIST, params):
            fresh = [a for a in page if a["candidate_id"] not in seen]
            seen.update(a["candidate_id"] for a in fresh)
            for record in await self.each(fresh, self._full):
                if record is not None:
                    yield record

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        candidate = await self.get_json(f"/{self.version}/candidates/{remote_id}", missing_ok=True)
        for aid in (candidate or {}).get("application_ids") or []:
            application = await self.get_json(f"/{self.version}/applications/{aid}", missing_ok=True)
            if application and application.get("status") == "hired":
                return await self._full(application, candidate)
        return None  # deleted, or no hired application any more

    async def _full(self, application: dict[str, Any], candidate: dict[str, Any] | None = None) -> dict[str, Any]:
        v = self.version
        candidate = (
            candidate or await self.get_json(f"/{v}/candidates/{application['candidate_id']}", missing_ok=True) or {}
        )
        offer = await self.get_json(f"/{v}/applications/{application['id']}/offers/current_offer", missing_ok=True)
        job_id = next((j["id"] for j in application.get("jobs") or []), None)
        return {
            **candidate,
            "id": application["candidate_id"],
            "_application": application,
            "_offer": offer or {},
            "_job": await self.shared(f"/{v}/jobs/{job_id}") if job_id else {},
        }

    def to_worker(self, record: dict[str, Any]) -> dict[str, Any]:
        emails = record.get("email_addresses") or []
        email = lambda kind: next((e["value"] for e in emails if e.get("type") == kind), None)  # noqa: E731
        job, offer = record["_job"], record["_offer"]
        office: dict[str, Any] = next(iter(job.get("offices") or []), {})
        kind = str((offer.get("custom_fields") or {}).get("employment_type") or "").strip().lower()
        updated = record.get("updated_at")
        return {
            "first_name": record.get("first_name"),
            "last_name": record.get("last_name"),
            "personal_email": email("personal") or email("other"),
            "work_email": email("work"),
            "title": job.get("name"),
            "department": _first(job.get("departments")).get("name"),
            "location": (office.get("location") or {}).get("name") or office.get("name"),
            "employment_type": employment_type(kind),
            "status": "pending",
            "start_date": offer.get("starts_at"),
            "updated_at": iso_datetime(updated),
        }


def _first(items: Any) -> dict[str, Any]:
    """The first of a list of objects (a job's departments), or an empty one."""
    return next(iter(items or []), {})
