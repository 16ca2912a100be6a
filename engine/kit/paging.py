"""Pagination styles as configured components, shared by source connectors and the REST writer.

Each vendor pages one of a few ways; a connector names its style instead of re-coding the loop:

- `offset_token`: an opaque token in the body plus a "more" flag (Lever: `next`, `hasNext`)
- `next_link`: the next page's URL in the body (Workable: `paging.next`)
- `link_header`: RFC 8288 `Link: <...>; rel="next"` (Greenhouse Harvest v1/v2 pages, v3 cursors)
- `page`: a page number and a total page count (Workday's Response_Results has the same shape)
- `offset`: a numeric offset advanced by the page's length
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Literal, TypeVar

import httpx
import jmespath
from pydantic import BaseModel, ConfigDict, Field

from provisioner.engine.kit.limits import MAX_PAGES

log = logging.getLogger("provisioner.paging")

T = TypeVar("T")

# Hears the records of every page read in this context: the CLI counts pages and records of a long
# poll with it, without every connector passing a callback through its read.
page_read: ContextVar[Callable[[int], None] | None] = ContextVar("page_read", default=None)

# A follow-up page answering one of these means the paging cursor is no longer valid.
EXPIRED_CURSOR_STATUS = frozenset({400, 404, 410, 422})


class CursorExpired(Exception):
    """The server no longer accepts the paging cursor of a listing already under way."""


class PagingError(Exception):
    """A page could not be read; carries the response so callers can word the error."""

    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class PagingRunaway(Exception):
    """A listing that does not end: a cursor seen before, or more pages than the limit."""


class Paging(BaseModel):
    model_config = ConfigDict(extra="forbid")
    style: Literal["none", "offset_token", "next_link", "link_header", "page", "offset"] = "none"
    items: str = "@"  # JMESPath: the records of one page
    next: str = "next"  # JMESPath: next token (offset_token) or URL (next_link)
    has_more: str | None = None  # JMESPath: a boolean saying there is more
    param: str = "offset"  # query parameter carrying the token, page number or offset
    total_pages: str | None = None  # JMESPath (page style)
    limit_param: str | None = None  # query parameter for the page size
    limit: int | None = Field(default=None, ge=1)
    first_page: int = 1  # page style: the number of the first page


async def paginate(
    client: httpx.AsyncClient,
    path: str,
    paging: Paging,
    params: dict[str, Any] | None = None,
    max_pages: int = MAX_PAGES,
) -> AsyncIterator[list[Any]]:
    """Yield the records of each page of a listing, following `paging`.

    A failing first page raises PagingError; a failing follow-up page with a client-error status
    raises CursorExpired, because only the cursor changed since a page that worked. A next page
    already read, or page `max_pages` + 1, raises PagingRunaway: an app cannot keep us listing.
    """
    params = dict(params or {})
    if paging.limit_param and paging.limit:
        params[paging.limit_param] = paging.limit
    url: str | None = path
    number, offset, first = paging.first_page, 0, True
    seen: set[str] = set()
    while url is not None:
        where = f"{url}?{sorted((str(k), str(v)) for k, v in params.items())}"
        if where in seen:
            raise PagingRunaway(f"the listing of {path} sent a page it had already sent (a paging loop)")
        if len(seen) >= max_pages:
            raise PagingRunaway(f"the listing of {path} passed {max_pages} pages (max_pages)")
        seen.add(where)
        # A followed link carries its own query; passing params (even empty) would replace it.
        response = await client.get(url, params=params or None)
        if response.status_code != 200:
            if not first and response.status_code in EXPIRED_CURSOR_STATUS:
                raise CursorExpired(f"HTTP {response.status_code} for a follow-up page of {path}")
            raise PagingError(response)
        first = False
        body = response.json() if response.content else None
        items = jmespath.search(paging.items, body) or []
        if (heard := page_read.get()) is not None:
            heard(len(items))
        yield items
        url, params = _next(paging, path, params, body, response, items, number, offset)
        number += 1
        offset += len(items)


def _next(
    paging: Paging,
    path: str,
    params: dict[str, Any],
    body: Any,
    response: httpx.Response,
    items: list[Any],
    number: int,
    offset: int,
) -> tuple[str | None, dict[str, Any]]:
    style = paging.style
    if style == "none" or (not items and style in ("page", "offset")):
        return None, params
    if paging.has_more and not jmespath.search(paging.has_more, body):
        return None, params  # the server says this was the last page, whatever links it sends
    if style == "link_header":
        # A cursor URL must be followed as given: Harvest v3 refuses extra parameters beside it.
        link = response.links.get("next", {}).get("url")
        return (link, {}) if link else (None, params)
    if style == "next_link":
        link = jmespath.search(paging.next, body)
        return (str(link), {}) if link else (None, params)
    if style == "offset_token":
        token = jmespath.search(paging.next, body)
        return (path, {**params, paging.param: token}) if token not in (None, "") else (None, params)
    if style == "page":
        total = jmespath.search(paging.total_pages, body) if paging.total_pages else None
        if total is not None and number >= int(total):
            return None, params
        return path, {**params, paging.param: number + 1}
    # offset: a short page is the last one
    if paging.limit and len(items) < paging.limit:
        return None, params
    return path, {**params, paging.param: offset + len(items)}


async def collect(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


async def restartable(listing: Callable[[], Awaitable[T]], what: str, checkpoint: str) -> T:
    """Run a listing; if its paging cursor expires part-way, run it once more from the checkpoint
    (the last committed cursor, so an incremental read does not fall back to a full one)."""
    try:
        return await listing()
    except CursorExpired as exc:
        log.warning("%s: paging cursor expired (%s); restarting the listing from %s", what, exc, checkpoint)
        return await listing()
