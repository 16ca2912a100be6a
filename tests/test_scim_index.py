"""The SCIM account index is refreshed with only what changed (`meta.lastModified gt …`) where the
app filters on it, and re-listed whole where it does not: against scim2-server over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Worker
from provisioner.engine.kit.servers import scim_app, serve_wsgi
from provisioner.targets.scim import ScimTarget
from provisioner.targets.scim_guards import ListingRunaway
from provisioner.targets.scim_support import INDEX_TTL

pytestmark = pytest.mark.fast

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


class _IgnoresModifiedFilter:
    """An app that drops a filter on meta.lastModified and answers everything, as some do."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if "lastModified" in parse_qs(environ.get("QUERY_STRING", "")).get("filter", [""])[0]:
            environ["QUERY_STRING"] = "startIndex=1&count=1000"
        return self.inner(environ, start_response)


def _create(url: str, i: int) -> None:
    body = {"schemas": [USER], "userName": f"user{i}@example.com", "externalId": f"hr:{i}"}
    httpx.post(f"{url}/Users", json=body, timeout=10).raise_for_status()


def _target(url: str) -> tuple[ScimTarget, list[str]]:
    target = ScimTarget.from_config(TargetConfig(name="app", type="scim", base_url=url))
    asked: list[str] = []

    async def note(request: httpx.Request) -> None:
        if request.url.path.endswith("/Users"):
            asked.append(parse_qs(request.url.query.decode()).get("filter", ["(whole listing)"])[0])

    target.http.event_hooks["request"].append(note)
    return target, asked


def _worker(i: int) -> Worker:
    return Worker(id=f"hr:{i}", source="hr", remote_id=str(i), work_email=f"user{i}@example.com")


async def _expire(target: ScimTarget) -> None:
    target.accounts.index_time -= INDEX_TTL + 1  # the index's minute is up


async def test_a_stale_index_fetches_only_the_accounts_changed_since(tmp_path):
    with serve_wsgi(scim_app()) as app:
        for i in range(30):
            _create(app.url, i)
        target, asked = _target(app.url)
        await target.prime(100)
        assert asked == ["(whole listing)"]
        _create(app.url, 30)  # someone else creates an account meanwhile
        await _expire(target)
        asked.clear()
        await target.prime(100)
        # the one-time check that the app filters on it, then the changes since the index's newest
        assert len(asked) == 2 and asked[1].startswith("meta.lastModified gt "), asked
        assert "2999" in asked[0]
        assert target.accounts.filters_modified is True
        found = await target.lookup(_worker(30), None, {"externalId": "hr:30", "userName": "user30@example.com"})
        assert found is not None
        assert len(asked) == 2  # found in the refreshed index, no filter query
        await _expire(target)
        asked.clear()
        await target.prime(100)
        assert len(asked) == 1 and asked[0].startswith("meta.lastModified gt ")  # learned: no second check
        await target.aclose()


async def test_an_app_that_ignores_the_filter_is_listed_whole(tmp_path):
    with serve_wsgi(_IgnoresModifiedFilter(scim_app())) as app:
        for i in range(5):
            _create(app.url, i)
        target, asked = _target(app.url)
        await target.prime(100)
        _create(app.url, 5)
        await _expire(target)
        asked.clear()
        await target.prime(100)
        # asked once whether anyone changed after 2999, answered everyone: learned, then the whole listing
        assert asked == ['meta.lastModified gt "2999-01-01T00:00:00+00:00"', "(whole listing)"], asked
        assert target.accounts.filters_modified is False
        await _expire(target)
        asked.clear()
        await target.prime(100)
        assert asked == ["(whole listing)"]  # not asked again
        assert await target.lookup(_worker(5), None, {"externalId": "hr:5", "userName": "user5@example.com"})
        await target.aclose()


class _EndlessChanges:
    """An app whose listing of changes promises a billion, one account per page, without end."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        asked = query.get("filter", [""])[0]
        if "lastModified" not in asked or "2999" in asked:
            return self.inner(environ, start_response)
        start = int(query.get("startIndex", ["1"])[0])
        stamp = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        user = {"id": f"u{start}", "userName": f"x{start}", "meta": {"lastModified": stamp}}
        page = {"schemas": [LIST], "totalResults": 10**9, "startIndex": start, "Resources": [user]}
        start_response("200 OK", [("Content-Type", "application/scim+json")])
        return [json.dumps(page).encode()]


async def test_a_listing_of_changes_that_never_ends_stops_at_max_pages(tmp_path):
    with serve_wsgi(_EndlessChanges(scim_app())) as app:
        _create(app.url, 1)
        target = ScimTarget.from_config(TargetConfig(name="app", type="scim", base_url=app.url, max_pages=5))
        await target.prime(100)  # the whole listing: one account
        await _expire(target)
        with pytest.raises(ListingRunaway, match="max_pages"):
            await target.prime(100)
        await target.aclose()
