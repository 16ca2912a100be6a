"""Each shared paging style against a small real HTTP server that pages the way that style says."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.kit.paging import (
    CursorExpired,
    LinkHeaderPaging,
    NextLinkPaging,
    NoPaging,
    OffsetPaging,
    PageNumberPaging,
    Paging,
    PagingError,
    PagingRunaway,
    PagingStyle,
    TokenPaging,
    collect,
    paginate,
)
from provisioner.engine.kit.servers import serve_asgi
from provisioner.sources.rest.connector import RestSource

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


async def tokens(request: Request) -> JSONResponse:
    # an opaque token per page; `constant` sends the same token on every page (a broken API)
    start = int(request.query_params.get("cursor", "t0")[1:])
    more = start + 10 < len(ROWS)
    following = "t10" if request.query_params.get("constant") else f"t{start + 10}"
    return JSONResponse({"data": ROWS[start : start + 10], "next": following if more else None, "hasNext": more})


async def linked(request: Request) -> JSONResponse:
    start = int(request.query_params.get("from", 0))
    following = str(request.url.replace_query_params(**{"from": start + 10}))
    headers = {"Link": f'<{following}>; rel="next"'} if start + 10 < len(ROWS) else {}
    return JSONResponse(ROWS[start : start + 10], headers=headers)


async def failing(request: Request) -> JSONResponse:
    return JSONResponse({"message": "nope"}, status_code=403)


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    routes = [Route("/rows", numbered), Route("/flagged", flagged), Route("/failing", failing)]
    app = Starlette(routes=[*routes, Route("/tokens", tokens), Route("/linked", linked)])
    with serve_asgi(app) as running:
        yield running


async def ids(url: str, path: str, paging: PagingStyle, params: dict | None = None) -> list[int]:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=url) as client:
        return [row["id"] for row in await collect(_flatten(paginate(client, path, paging, params)))]


async def _flatten(pages):  # type: ignore[no-untyped-def]
    async for page in pages:
        for row in page:
            yield row


async def test_page_numbers_until_the_total(server):
    paging = PageNumberPaging(items="items", param="page", total_pages="total_pages", limit_param="size", limit=10)
    assert await ids(server.url, "/rows", paging) == list(range(23))


async def test_numeric_offset_until_a_short_page(server):
    paging = OffsetPaging(items="items", param="offset", limit_param="size", limit=10)
    assert await ids(server.url, "/rows", paging, {"offset": 0}) == list(range(23))


async def test_has_more_flag_ends_a_next_link_listing(server):
    paging = NextLinkPaging(items="items", next="next", has_more="more")
    assert await ids(server.url, "/flagged", paging) == list(range(23))


async def test_a_failing_first_page_and_an_expired_follow_up_are_told_apart(server):
    with pytest.raises(PagingError) as first:
        await ids(server.url, "/failing", PageNumberPaging(items="items"))
    assert first.value.response.status_code == 403
    paging = OffsetPaging(items="items", param="offset", limit_param="size", limit=10)
    with pytest.raises(CursorExpired, match="HTTP 410"):
        await ids(server.url, "/rows", paging, {"offset": 0, "expire": 1})


async def test_an_opaque_token_until_has_more_says_no(server):
    paging = TokenPaging(items="data", next="next", has_more="hasNext", param="cursor")
    assert await ids(server.url, "/tokens", paging) == list(range(23))


async def test_a_link_header_until_there_is_none(server):
    assert await ids(server.url, "/linked", LinkHeaderPaging()) == list(range(23))


async def test_no_paging_reads_one_answer(server):
    assert await ids(server.url, "/linked", NoPaging()) == list(range(10))


async def test_a_constant_token_stops_after_two_pages(server):
    paging = TokenPaging(items="data", next="next", param="cursor")
    with pytest.raises(PagingRunaway, match="the API returned the same cursor twice; stopped after 2 pages"):
        await ids(server.url, "/tokens", paging, {"constant": 1})


async def test_a_rest_source_whose_api_repeats_its_cursor_fails_its_read_in_one_line(server):
    settings = {
        "base_url": server.url,
        "path": "/tokens",
        "params": {"constant": "1"},
        "paging": {"style": "offset_token", "items": "data", "next": "next", "param": "cursor"},
        "mapping": {"first_name": "x{{ record.id }}", "last_name": "Lee"},
    }
    source = RestSource.from_settings("hr", settings)
    try:
        with pytest.raises(SourceError) as failed:
            await source.read({})
    finally:
        await source.aclose()
    assert str(failed.value).startswith("source hr: the API returned the same cursor twice; stopped after 2 pages")


class Holder(BaseModel):
    paging: Paging = NoPaging()


@pytest.mark.parametrize(
    ("block", "style"),
    [
        ({}, NoPaging),
        ({"items": "data"}, NoPaging),
        ({"style": "offset_token", "next": "next", "has_more": "hasNext", "param": "offset"}, TokenPaging),
        ({"style": "next_link", "next": "links.next", "has_more": "meta.has_more"}, NextLinkPaging),
        ({"style": "link_header", "items": "@"}, LinkHeaderPaging),
        ({"style": "page", "total_pages": "pages", "first_page": 0, "limit_param": "n", "limit": 5}, PageNumberPaging),
        ({"style": "offset", "param": "skip", "limit_param": "take", "limit": 50}, OffsetPaging),
    ],
)
def test_a_paging_block_is_the_model_of_its_style(block: dict, style: type):  # type: ignore[type-arg]
    parsed = Holder.model_validate({"paging": block}).paging
    assert type(parsed) is style
    assert parsed.model_dump(exclude_unset=True) == {"style": parsed.style, **block}  # every key kept, none invented


def test_a_key_another_style_takes_and_an_unknown_style_are_refused():
    with pytest.raises(ValidationError, match="next\n  Extra inputs are not permitted"):
        Holder.model_validate({"paging": {"style": "link_header", "next": "next"}})
    with pytest.raises(ValidationError, match="Input tag 'cursor' found using 'style' does not match"):
        Holder.model_validate({"paging": {"style": "cursor"}})


def test_a_paging_problem_is_told_at_its_key_in_the_yaml():
    entry = {"base_url": "http://hr.example", "path": "/people", "mapping": {"first_name": "{{ record.n }}"}}
    assert RestSource.problems({**entry, "paging": {"style": "next_link", "nxt": "links.next"}}) == [
        (("paging", "nxt"), "unknown key 'nxt' (did you mean 'next'?)")
    ]
    assert RestSource.problems({**entry, "paging": {"style": "link_header", "next": "links.next"}}) == [
        (("paging", "next"), "unknown key 'next'")  # the next link of this style is a header
    ]
    assert RestSource.problems({**entry, "paging": {"style": "next-link"}}) == [
        (
            ("paging", "style"),
            "unknown style 'next-link' (did you mean 'next_link'?); "
            "known: none, offset_token, next_link, link_header, page, offset",
        )
    ]
