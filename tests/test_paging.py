"""Each shared paging style against a small real HTTP server that pages the way that style says."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from provisioner.engine.kit.paging import CursorExpired, Paging, PagingError, collect, paginate
from provisioner.engine.kit.servers import serve_asgi

pytestmark = pytest.mark.fast

ROWS = [{"id": i} for i in range(23)]


async def numbered(request: Request) -> JSONResponse:
    q = request.query_params
    size = int(q.get("size", 10))
    if "page" in q or ("page" not in q and "offset" not in q):
        number = int(q.get("page", 1))
        chunk = ROWS[(number - 1) * size : number * size]
        return JSONResponse({"items": chunk, "total_pages": -(-len(ROWS) // size)})
    start = int(q["offset"])
    if start > 10 and q.get("expire") == "1":
        return JSONResponse({"error": "stale offset"}, status_code=410)
    return JSONResponse({"items": ROWS[start : start + size]})


async def flagged(request: Request) -> JSONResponse:
    # a next link on every page; only `more` says when to stop
    start = int(request.query_params.get("from", 0))
    return JSONResponse(
        {
            "items": ROWS[start : start + 10],
            "more": start + 10 < len(ROWS),
            "next": str(request.url.replace_query_params(**{"from": start + 10})),
        }
    )


async def failing(request: Request) -> JSONResponse:
    return JSONResponse({"message": "nope"}, status_code=403)


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    app = Starlette(routes=[Route("/rows", numbered), Route("/flagged", flagged), Route("/failing", failing)])
    with serve_asgi(app) as running:
        yield running


async def ids(url: str, path: str, paging: Paging, params: dict | None = None) -> list[int]:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=url) as client:
        return [row["id"] for row in await collect(_flatten(paginate(client, path, paging, params)))]


async def _flatten(pages):  # type: ignore[no-untyped-def]
    async for page in pages:
        for row in page:
            yield row


async def test_page_numbers_until_the_total(server):
    paging = Paging(style="page", items="items", param="page", total_pages="total_pages", limit_param="size", limit=10)
    assert await ids(server.url, "/rows", paging) == list(range(23))


async def test_numeric_offset_until_a_short_page(server):
    paging = Paging(style="offset", items="items", param="offset", limit_param="size", limit=10)
    assert await ids(server.url, "/rows", paging, {"offset": 0}) == list(range(23))


async def test_has_more_flag_ends_a_next_link_listing(server):
    paging = Paging(style="next_link", items="items", next="next", has_more="more")
    assert await ids(server.url, "/flagged", paging) == list(range(23))


async def test_a_failing_first_page_and_an_expired_follow_up_are_told_apart(server):
    with pytest.raises(PagingError) as first:
        await ids(server.url, "/failing", Paging(style="page", items="items"))
    assert first.value.response.status_code == 403
    paging = Paging(style="offset", items="items", param="offset", limit_param="size", limit=10)
    with pytest.raises(CursorExpired, match="HTTP 410"):
        await ids(server.url, "/rows", paging, {"offset": 0, "expire": 1})
