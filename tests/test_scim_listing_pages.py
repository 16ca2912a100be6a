"""How large the pages of a SCIM listing are and how they are paged: as large as the app announces
(filter.maxResults, pagination.maxPageSize) unless `page_size` says otherwise, fewer at once when
they are large, and by cursor (RFC 9865) where the app pages only that way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.engine.contracts.protocols import ListingUnsettled
from provisioner.engine.kit.servers import scim_server_process
from provisioner.targets.scim_listing import HELD_MAX, PAGE_MAX, PAGE_UNANNOUNCED
from tests.hostile_apps import CONFIG
from tests.test_scim_listing import USER, Paged, listed, target


def announcing(max_results: int | None = None, **pagination: Any) -> dict[str, Any]:
    config = {**CONFIG, "filter": {"supported": False, **({"maxResults": max_results} if max_results else {})}}
    return {**config, "pagination": pagination} if pagination else config


@pytest.mark.parametrize(
    ("config", "settings", "asked"),
    [
        (announcing(250), {}, 250),
        (announcing(250), {"page_size": 100}, 100),  # the setting, when it asks for less
        (announcing(250), {"page_size": 400}, 250),  # never more than the app serves
        (announcing(), {}, PAGE_UNANNOUNCED),
        (announcing(250, cursor=False, index=True, maxPageSize=120), {}, 120),
        (announcing(10**6), {}, PAGE_MAX),
    ],
)
async def test_pages_are_as_large_as_the_app_announces(config: dict[str, Any], settings: dict[str, Any], asked: int):
    app = Paged(users=1000, cap=10**6, delay=0.0, config=config)
    assert await listed(app, **settings) == [f"u{i}" for i in range(1000)]
    assert set(app.counts) == {asked}
    assert len(app.pages) == -(-1000 // asked)


async def test_large_pages_are_fetched_fewer_at_once():
    size = HELD_MAX // 2
    app = Paged(users=4 * size, cap=size, config=announcing(size))
    assert len(await listed(app, concurrency=8)) == 4 * size
    assert app.peak == 2  # at most HELD_MAX resources held, whatever the ceiling


CURSOR_ONLY = {"cursor": True, "index": False, "maxPageSize": 10, "defaultPaginationMethod": "cursor"}


async def test_an_app_that_pages_only_by_cursor_is_listed_by_cursor():
    app = Paged(users=95, cap=10**6, delay=0.0, config=announcing(1000, **CURSOR_ONLY))
    assert await listed(app) == [f"u{i}" for i in range(95)]
    assert app.pages == list(range(1, 95, 10))  # one after another, each page once
    assert set(app.counts) == {10}


async def test_a_cursor_app_that_repeats_a_page_is_unsettled_and_not_followed_forever():
    app = Paged(users=95, delay=0.0, ignore_start=True, config=announcing(1000, **CURSOR_ONLY))
    with pytest.raises(ListingUnsettled, match="resource u0 listed twice"):
        await listed(app)
    assert len(app.pages) == 2


async def test_scim2_server_paging_only_by_cursor(tmp_path: Path):
    from scim2_server.utils import load_default_service_provider_config

    config = load_default_service_provider_config().model_dump(mode="json", by_alias=True, exclude_none=True)
    announced = tmp_path / "config.json"
    announced.write_text(json.dumps({**config, "pagination": {**CURSOR_ONLY, "cursorTimeout": 60}}))
    with scim_server_process(str(announced)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            for i in range(25):
                (await client.post("/Users", json={"schemas": [USER], "userName": f"u{i:02}"})).raise_for_status()
            refused = await client.get("/Users", params={"startIndex": 1, "count": 10})
            assert refused.status_code == 501  # index paging is really not there
        app = target(url)
        try:
            accounts = [a async for a in app.list_accounts()]
            checked = {what: (passed, detail) for what, passed, detail in await app.check()}
        finally:
            await app.aclose()
    names = [a.attributes["userName"] for a in accounts]
    read = checked["read one of Users"]  # `targets check` reads by cursor too (an index is a 501 there)
    assert checked["credentials"][0] and read[0] and read[1] in names
    assert sorted(names) == [f"u{i:02}" for i in range(25)]  # every one, once


async def test_a_cursor_only_app_refreshes_its_index_with_the_changes_alone(tmp_path: Path):
    """The `meta.lastModified gt …` query is paged by cursor too: an index page there is a 501, and
    the index would be re-listed whole every minute."""
    from scim2_server.utils import load_default_service_provider_config

    from tests.test_scim_index import _create, _expire, _target, _worker

    config = load_default_service_provider_config().model_dump(mode="json", by_alias=True, exclude_none=True)
    announced = tmp_path / "config.json"
    announced.write_text(json.dumps({**config, "pagination": {**CURSOR_ONLY, "cursorTimeout": 60}}))
    with scim_server_process(str(announced)) as url:
        for i in range(25):
            _create(url, i)
        app, asked = _target(url)
        try:
            await app.prime(100)
            assert set(asked) == {"(whole listing)"}  # pages of 10, by cursor
            _create(url, 25)
            await _expire(app)
            asked.clear()
            await app.prime(100)
            assert app.accounts.filters_modified is True
            assert asked and all("lastModified" in query for query in asked), asked
            found = await app.lookup(_worker(25), None, {"externalId": "hr:25", "userName": "user25@example.com"})
            assert found is not None
        finally:
            await app.aclose()
