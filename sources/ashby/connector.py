"""`type: ashby` — applications moved to Hired in Ashby become `pending` Workers (pre-hires).

Ashby's API is RPC over POST with JSON bodies (https://developers.ashbyhq.com/reference/introduction),
Basic auth with the API key as username and a blank password
(https://developers.ashbyhq.com/reference/authentication). A worker is one hired application
(`ashby:<application id>`): the change feed (`application.list` with a `syncToken`) and the
webhooks are about applications, and a hire is an application's status. Its accepted offer's
latest version gives the start date (`offer.list`), `job.info` the title and employment type,
`department.info` and `location.info` their names, `candidate.info` the e-mail addresses.

Lists page with `cursor`/`limit` (≤ 100) until `moreDataAvailable` is false; the last page of a
full listing carries a `syncToken`, kept as this source's cursor, and the next read passes it to
get only what changed since. An application seen changed but no longer Hired (archived, moved back)
is a removal at once. A token Ashby refuses as `sync_token_expired` means a full re-sync
(https://developers.ashbyhq.com/docs/pagination-and-incremental-sync). Errors a REST API would
answer 4xx come back as HTTP 200 with `success: false` and `errorInfo`
(https://developers.ashbyhq.com/docs/responses).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from provisioner.engine.contracts.protocols import SourceError, SourceRead
from provisioner.engine.kit.paging import CursorExpired, PagingError, PagingRunaway
from provisioner.sources.base import HttpSource, HttpSourceSettings
from provisioner.sources.values import employment_type, iso_datetime

log = logging.getLogger("provisioner.sources")

PAGE_MAX = 100  # Ashby caps a page at 100 results
VERSION = "application/json; version=1"  # the Accept header Ashby's reference sends
PERMISSION = "missing_endpoint_permission"  # a valid key without the module's read permission


class SyncTokenExpired(Exception):
    """Ashby no longer accepts the stored syncToken: only a full re-sync gives a new one."""


class AshbySettings(HttpSourceSettings):
    base_url: str = "https://api.ashbyhq.com"
    api_key: SecretStr | None = None


class AshbySource(HttpSource):
    vendor = "Ashby"
    settings_model = AshbySettings
    credential_hint = "api_key (the Basic username, blank password) or an auth block"
    key_field, key_auth = "api_key", {"type": "basic", "username": "{key}", "password": ""}
    # Ashby documents 429s (with Retry-After) but publishes no per-key figure; this pace stays
    # under the emulator's stand-in limit. Set rate_limit to what your account is granted.
    default_rate, default_burst = "8/s", 8

    def __init__(self, name: str, settings: AshbySettings):
        super().__init__(name, settings)
        self._token: str | None = None  # the syncToken this read starts from (None: a full read)
        self._next_token: str | None = None  # the one the listing ended with
        self._resynced = False  # the token had expired: this "incremental" read was a full one

    # --- the POST-JSON RPC ---------------------------------------------------------------------
    async def call(self, endpoint: str, body: dict[str, Any], missing_ok: bool = False) -> dict[str, Any] | None:
        """One RPC; the answer's JSON, None for a `*_not_found` when `missing_ok`."""
        response = await self.client.post(f"/{endpoint}", json=body, headers={"Accept": VERSION})
        if response.status_code != 200:
            raise PagingError(response)  # 401/403/429/5xx: worded by `refused` once retries are spent
        try:
            answer = response.json()
        except ValueError:
            raise SourceError(f"source {self.name}: Ashby answered {endpoint} with something other than JSON") from None
        if not isinstance(answer, dict):
            raise SourceError(f"source {self.name}: Ashby answered {endpoint} with an unexpected body")
        if answer.get("success"):
            return answer
        code, message = _error(answer)
        if code == "sync_token_expired":
            raise SyncTokenExpired(message)
        if missing_ok and code.endswith("_not_found"):
            return None
        detail = f" ({message})" if message else ""
        raise SourceError(f"source {self.name}: Ashby refused {endpoint}: {code}{detail}")

    async def listing(self, endpoint: str, body: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of a list endpoint; the last page's syncToken lands in `_next_token`."""
        limit = min(self.settings.page_size, PAGE_MAX)
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            if len(seen) >= self.settings.max_pages:
                raise PagingRunaway(f"the listing of {endpoint} passed {self.settings.max_pages} pages (max_pages)")
            page = await self.call(endpoint, {**body, "limit": limit, **({"cursor": cursor} if cursor else {})})
            assert page is not None  # only a missing_ok call answers None
            yield list(page.get("results") or [])
            cursor = page.get("nextCursor")
            if not page.get("moreDataAvailable") or not cursor:
                self._next_token = page.get("syncToken") or self._next_token
                return
            if cursor in seen:
                raise PagingRunaway(f"Ashby sent the same nextCursor twice while listing {endpoint}")
            seen.add(cursor)

    async def lookup(self, endpoint: str, key: str, value: Any) -> dict[str, Any]:
        """A job, department or location many records name: asked once per read."""
        if not value:
            return {}
        path = f"{endpoint}:{value}"
        if path not in self._shared:
            self._shared[path] = asyncio.ensure_future(self.call(endpoint, {key: value}, missing_ok=True))
        try:
            answer = await self._shared[path]
        except Exception:
            self._shared.pop(path, None)
            raise
        return dict((answer or {}).get("results") or {})

    def refused(self, response: httpx.Response) -> SourceError:
        # Ashby answers a wrong or deactivated key with 403, like a missing permission: its code tells them apart.
        code, message = _error_of(response)
        if response.status_code == 403 and code != PERMISSION:
            return SourceError(
                f"source {self.name}: Ashby refused the credentials (HTTP 403); check the API key in the config"
            )
        if response.status_code == 403:
            return SourceError(
                f"source {self.name}: Ashby denied access (HTTP 403) to {response.request.url.path}: {code}"
                f"{f' ({message})' if message else ''}; the credential lacks a permission or scope"
            )
        return super().refused(response)

    async def check(self) -> str:
        """One application and one offer: the key works and holds the Candidates and Offers read
        permissions a read needs, without fetching a page of hires' details."""
        for endpoint in ("application.list", "offer.list"):
            await self._guarded(self.call(endpoint, {"limit": 1}))
        return "credentials accepted"

    # --- reading -------------------------------------------------------------------------------
    def _since(self, cursor: dict[str, Any], now: datetime) -> datetime | None:
        """Incremental exactly when a syncToken is held and the periodic full read is not due."""
        since = super()._since({**cursor, "since": cursor.get("since") if cursor.get("sync_token") else None}, now)
        self._token = cursor.get("sync_token") if since is not None else None
        return since

    async def read(self, cursor: dict[str, Any]) -> SourceRead:
        self._next_token, self._resynced = None, False
        read = await super().read(cursor)
        if self._resynced:  # the expired token made this a full read: absence means removal again
            read.complete, read.gone = True, []
            read.cursor.update(mode="full", last_full_read=read.cursor["since"])
        read.cursor["sync_token"] = self._next_token
        return read

    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        token = self._token if since is not None else None
        try:
            async for record in self._applications(token):
                yield record
        except SyncTokenExpired:
            if token is None:
                raise SourceError(f"source {self.name}: Ashby called a full listing's token expired") from None
            log.warning("source %s: Ashby's syncToken expired; reading everything again", self.name)
            # The listing starts over without a token (base `read` restarts it once), so what this
            # one already yielded is dropped rather than read twice.
            self._token, self._resynced = None, True
            raise CursorExpired("Ashby's syncToken expired") from None

    async def _applications(self, token: str | None) -> AsyncIterator[dict[str, Any]]:
        # No status filter: a changed application that left Hired must be seen to end its pre-hire.
        async for page in self.listing("application.list", {"syncToken": token} if token else {}):
            hired = [a for a in page if a.get("status") == "Hired"]
            if token is not None:
                self.note_gone(str(a["id"]) for a in page if a.get("status") != "Hired" and a.get("id"))
            for record in await self.each(hired, self._full):
                yield record

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        found = await self.call("application.info", {"applicationId": remote_id}, missing_ok=True)
        application = (found or {}).get("results") or {}
        if application.get("status") != "Hired":
            return None  # deleted, or archived / moved back since
        return await self._full(application)

    async def _full(self, application: dict[str, Any]) -> dict[str, Any]:
        candidate_id = (application.get("candidate") or {}).get("id")
        candidate = await self.call("candidate.info", {"id": candidate_id}, missing_ok=True) if candidate_id else None
        offers = await self.call("offer.list", {"applicationId": application["id"]}) or {}
        job = await self.lookup("job.info", "id", (application.get("job") or {}).get("id"))
        return {
            **application,
            "_candidate": (candidate or {}).get("results") or application.get("candidate") or {},
            "_offer": _accepted(offers.get("results") or []),
            "_job": job,
            "_department": await self.lookup("department.info", "departmentId", job.get("departmentId")),
            "_location": await self.lookup("location.info", "locationId", job.get("locationId")),
        }

    def to_worker(self, record: dict[str, Any]) -> dict[str, Any]:
        candidate, job, offer = record["_candidate"], record["_job"], record["_offer"]
        first, _, last = str(candidate.get("name") or "").strip().partition(" ")
        location = record["_location"]
        country = str(((location.get("address") or {}).get("postalAddress") or {}).get("addressCountry") or "")
        start = (offer.get("latestVersion") or {}).get("startDate")
        team: list[dict[str, Any]] = record.get("hiringTeam") or []
        manager = next((m for m in team if m.get("role") == "Hiring Manager"), {})
        return {
            "first_name": first or None,
            "last_name": last.strip() or None,
            "display_name": candidate.get("name"),
            "personal_email": _email(candidate, "Personal") or _email(candidate, "Other"),
            "work_email": _email(candidate, "Work"),
            "title": job.get("title") or (record.get("job") or {}).get("title"),
            "department": record["_department"].get("name"),
            "location": location.get("name"),
            # Ashby's address may spell the country out; only a two-letter code is one we can trust.
            "country": country.upper() if len(country) == 2 else None,
            "employment_type": employment_type(job.get("employmentType")),
            "status": "pending",
            "start_date": start[:10] if isinstance(start, str) else start,
            "updated_at": iso_datetime(record.get("updatedAt")),
            "custom": {
                k: v
                for k, v in {"candidate_id": candidate.get("id"), "hiring_manager_email": manager.get("email")}.items()
                if v
            },
        }


def _error(answer: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of a `success: false` answer; `errors` is the deprecated list form."""
    info = answer.get("errorInfo") or {}
    errors = answer.get("errors") or []
    code = str(info.get("code") or (errors[0] if errors else "") or "unknown_error")
    return code, str(info.get("message") or "")


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        answer = response.json()
    except ValueError:
        return "", ""
    return _error(answer) if isinstance(answer, dict) else ("", "")


def _accepted(offers: list[dict[str, Any]]) -> dict[str, Any]:
    """The offer a hire starts on: the latest accepted one, else the latest of any."""

    def when(offer: dict[str, Any]) -> str:
        return str(offer.get("decidedAt") or (offer.get("latestVersion") or {}).get("createdAt") or "")

    accepted = [o for o in offers if o.get("acceptanceStatus") == "Accepted"]
    return max(accepted or offers, key=when, default={})


def _email(candidate: dict[str, Any], kind: str) -> str | None:
    addresses = [candidate.get("primaryEmailAddress") or {}, *(candidate.get("emailAddresses") or [])]
    return next((a["value"] for a in addresses if a.get("type") == kind and a.get("value")), None)
