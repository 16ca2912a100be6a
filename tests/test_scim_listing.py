"""Listing a SCIM app's accounts with index-based pages fetched several at once: complete, in the
app's order, each account once, against two independent servers; and a listing whose pages do not
add up (the app changed while it was read, or ignores startIndex) is never taken for the truth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.protocols import ListingUnsettled
from provisioner.engine.kit.servers import scim_server_process, serve_asgi
from provisioner.engine.runtime.wiring import Parts
from provisioner.reconcile.report import as_json
from provisioner.reconcile.run import Reconciliation, reconcile
from provisioner.targets.scim import ScimTarget
from tests.conftest import make_config
from tests.hostile_apps import CONFIG, LIST
from tests.scimmy_server import scimmy_available, scimmy_server_process

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
TOKEN = "listing-token"


def target(url: str, **settings: Any) -> ScimTarget:
    return ScimTarget.from_config(
        TargetConfig.model_validate({"name": "app", "type": "scim", "base_url": url, **settings})
    )


@pytest.fixture(
    params=[
        "scim2-server",
        pytest.param(
            "scimmy", marks=pytest.mark.skipif(not scimmy_available(), reason="needs `npm ci` in tests/scimmy")
        ),
    ]
)
def app_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "scimmy":
        with scimmy_server_process(TOKEN) as url:
            yield url
    else:
        with scim_server_process() as url:
            yield url


# 10 full pages and a partial one: the page boundaries of a large listing, at a small page size.
PAGE, ACCOUNTS = 10, 105


async def test_every_account_once_in_the_apps_order(app_url: str):
    async with httpx.AsyncClient(base_url=app_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for i in range(1, ACCOUNTS + 1):
            answer = await client.post("/Users", json={"schemas": [USER], "userName": f"u{i:04}", "externalId": str(i)})
            answer.raise_for_status()
        sequential: list[str] = []
        while len(sequential) < ACCOUNTS:
            page = (await client.get("/Users", params={"startIndex": len(sequential) + 1, "count": PAGE})).json()
            sequential += [r["id"] for r in page["Resources"]]
    app = target(app_url, token=TOKEN, page_size=PAGE, concurrency=4)
    try:
        listed = [a async for a in app.list_accounts()]
    finally:
        await app.aclose()
    assert [a.id for a in listed] == sequential  # all 105, in order, none twice: 11 pages, 10 fetched together
    assert sorted(a.attributes["userName"] for a in listed) == [f"u{i:04}" for i in range(1, ACCOUNTS + 1)]


@dataclass
class Paged:
    """A SCIM app of `users` accounts (`cap` per page whatever `count` asks) that answers `delay`
    late, counts the requests in flight, and can change between pages the way live apps do. It
    announces `config`; asked with a `cursor` (RFC 9865), it pages by cursor: the cursor is the
    index of the page's first account."""

    users: int
    cap: int = 100
    delay: float = 0.05
    ignore_start: bool = False  # every page is the first one
    delete_after_first: int = 0  # listings whose first page is followed by one deletion (shifting the rest)
    in_flight: int = 0
    peak: int = 0
    pages: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # the `count` each page asked for
    ids: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=lambda: CONFIG)

    def __post_init__(self) -> None:
        self.ids = [f"u{i}" for i in range(self.users)]

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            if request.url.path.endswith("ServiceProviderConfig"):
                return JSONResponse(self.config)
            if request.url.path.endswith("Groups"):
                return JSONResponse({"schemas": [LIST], "totalResults": 0, "Resources": []})
            cursor = request.query_params.get("cursor")
            start = int(cursor or "1") if cursor is not None else int(request.query_params.get("startIndex", "1"))
            start = 1 if self.ignore_start else start
            self.counts.append(int(request.query_params.get("count", "100")))
            count = min(self.counts[-1], self.cap)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1
            self.pages.append(start)
            chosen = self.ids[start - 1 : start - 1 + count]
            body: dict[str, Any] = {
                "schemas": [LIST],
                "totalResults": len(self.ids),
                "itemsPerPage": len(chosen),
                "Resources": [{"id": i, "userName": i, "active": True} for i in chosen],
            }
            if cursor is None:
                body["startIndex"] = start
            elif start + count <= len(self.ids):
                body["nextCursor"] = str(start + count)
            if start == 1 and self.delete_after_first:  # someone removes an account listed on page 1
                self.delete_after_first -= 1
                self.ids.pop(0)
            return JSONResponse(body)

        return Starlette(routes=[Route("/{path:path}", handle)])


async def listed(app: Paged, **settings: Any) -> list[str]:
    with serve_asgi(app.app()) as server:
        scim = target(server.url, **settings)
        try:
            return [a.id async for a in scim.list_accounts()]
        finally:
            await scim.aclose()


async def test_pages_are_fetched_together_up_to_the_ceiling_and_follow_the_apps_page_size():
    app = Paged(users=2000, cap=50)  # asked for 200 a page, the app gives 50: 40 pages
    ids = await listed(app, page_size=200, concurrency=6)
    assert ids == [f"u{i}" for i in range(2000)]
    assert 2 <= app.peak <= 6  # several pages at once, never past the target's ceiling
    assert sorted(app.pages) == list(range(1, 2001, 50))  # each page asked once


async def test_an_app_that_ignores_start_index_is_unsettled_not_complete():
    app = Paged(users=300, ignore_start=True)
    with pytest.raises(ListingUnsettled, match="resource u0 listed twice"):
        await listed(app, page_size=100)


async def test_an_account_removed_while_listing_makes_the_listing_unsettled():
    app = Paged(users=300, delete_after_first=1)
    with pytest.raises(ListingUnsettled, match="totalResults was 300, then 299"):
        await listed(app, page_size=100)


def _config(tmp_path: Path, url: str) -> Any:
    people = tmp_path / "people.csv"
    people.write_text("remote_id,first_name,last_name,work_email,status\n")
    return make_config(f"sqlite:///{tmp_path / 's.db'}", url, {"name": "hr", "type": "file", "path": str(people)})


async def _reconciled(tmp_path: Path, app: Paged) -> Reconciliation:
    with serve_asgi(app.app()) as server:
        parts = Parts(_config(tmp_path, server.url))
        try:
            return await reconcile(parts)
        finally:
            await parts.aclose()


async def test_reconcile_lists_again_once_and_judges_nothing_from_a_listing_that_never_adds_up(tmp_path: Path):
    once = Paged(users=300, delay=0.0, delete_after_first=1)  # changed during the first listing only
    result = await _reconciled(tmp_path, once)
    assert result.unlisted == {} and result.accounts == 299  # listed again, and that one added up
    assert sum(1 for p in once.pages if p == 1) == 2

    result = await _reconciled(tmp_path, Paged(users=300, delay=0.0, ignore_start=True))
    assert "app" in result.unlisted and "listed twice" in result.unlisted["app"]
    assert result.items == [] and not result.settled()  # no account judged orphaned from it; exit 2
    assert as_json(result)["unlisted"] == result.unlisted
