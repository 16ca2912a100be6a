"""Pagination styles as configured components, shared by source connectors and the REST writer.

Each vendor pages one of a few ways; a connector names its style instead of re-coding the loop.
One small model per style, chosen by `style` (Airbyte's declarative paginators are the model):

- `offset_token` (TokenPaging): an opaque token in the body plus a "more" flag (Lever: `next`, `hasNext`)
- `next_link` (NextLinkPaging): the next page's URL in the body (Workable: `paging.next`)
- `link_header` (LinkHeaderPaging): RFC 8288 `Link: <...>; rel="next"` (Greenhouse Harvest v1 pages, v3 cursors)
- `page` (PageNumberPaging): a page number and a total page count (Workday's Response_Results has the same shape)
- `offset` (OffsetPaging): a numeric offset advanced by the page's length
- `none` (NoPaging): one answer holds every record

Whatever the style, a listing that asks for a page it has already read stops with PagingRunaway:
an app that sends the same cursor again cannot keep us listing.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import httpx
import jmespath
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from provisioner.engine.kit.limits import MAX_PAGES
from provisioner.engine.kit.tagged import default_tag

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


@dataclass(frozen=True)
class PageRequest:
    """Where a page is asked for: a followed link carries its own query, so its params are empty."""

    url: str
    params: dict[str, Any]

    def key(self) -> str:
        return f"{self.url}?{sorted((str(k), str(v)) for k, v in self.params.items())}"


@dataclass(frozen=True)
class Page:
    """One page as read: what a style looks at to find the next one."""

    path: str  # the listing's own path (a followed link is not it)
    request: PageRequest
    response: httpx.Response
    body: Any
    items: list[Any]
    before: int  # pages read before this one
    records_before: int  # records on those pages


class _Style(BaseModel, ABC):
    model_config = ConfigDict(extra="forbid")
    items: str = "@"  # JMESPath: the records of one page
    has_more: str | None = None  # JMESPath: a boolean saying there is more, whatever links the page sends
    limit_param: str | None = None  # query parameter for the page size
    limit: int | None = Field(default=None, ge=1)
    # What a listing that loops has repeated, for its error.
    repeats: ClassVar[str] = "cursor"

    def first(self, path: str, params: dict[str, Any]) -> PageRequest:
        if self.limit_param and self.limit:
            params = {**params, self.limit_param: self.limit}
        return PageRequest(path, params)

    def after(self, page: Page) -> PageRequest | None:
        """The next page's request, or None when `page` was the last."""
        if self.has_more and not jmespath.search(self.has_more, page.body):
            return None
        return self.follow(page)

    @abstractmethod
    def follow(self, page: Page) -> PageRequest | None: ...


class NoPaging(_Style):
    style: Literal["none"] = "none"

    def follow(self, page: Page) -> PageRequest | None:
        return None


class TokenPaging(_Style):
    style: Literal["offset_token"] = "offset_token"
    next: str = "next"  # JMESPath: the next page's token
    param: str = "offset"  # query parameter carrying it

    def follow(self, page: Page) -> PageRequest | None:
        token = jmespath.search(self.next, page.body)
        if token in (None, ""):
            return None
        return PageRequest(page.path, {**page.request.params, self.param: token})


class NextLinkPaging(_Style):
    style: Literal["next_link"] = "next_link"
    next: str = "next"  # JMESPath: the next page's URL
    repeats: ClassVar[str] = "next URL"

    def follow(self, page: Page) -> PageRequest | None:
        link = jmespath.search(self.next, page.body)
        return PageRequest(str(link), {}) if link else None


class LinkHeaderPaging(_Style):
    style: Literal["link_header"] = "link_header"
    repeats: ClassVar[str] = "next link"

    def follow(self, page: Page) -> PageRequest | None:
        # A cursor URL must be followed as given: Harvest v3 refuses extra parameters beside it.
        link = page.response.links.get("next", {}).get("url")
        return PageRequest(link, {}) if link else None


class PageNumberPaging(_Style):
    style: Literal["page"] = "page"
    param: str = "offset"  # query parameter carrying the page number (this default predates the style's own model)
    total_pages: str | None = None  # JMESPath: how many pages there are
    first_page: int = 1  # the number of the first page
    repeats: ClassVar[str] = "page"

    def follow(self, page: Page) -> PageRequest | None:
        number = self.first_page + page.before
        total = jmespath.search(self.total_pages, page.body) if self.total_pages else None
        if not page.items or (total is not None and number >= int(total)):
            return None
        return PageRequest(page.path, {**page.request.params, self.param: number + 1})


class OffsetPaging(_Style):
    style: Literal["offset"] = "offset"
    param: str = "offset"  # query parameter carrying the offset
    repeats: ClassVar[str] = "offset"

    def follow(self, page: Page) -> PageRequest | None:
        if not page.items or (self.limit and len(page.items) < self.limit):
            return None  # a short page is the last one
        return PageRequest(page.path, {**page.request.params, self.param: page.records_before + len(page.items)})


PagingStyle = NoPaging | TokenPaging | NextLinkPaging | LinkHeaderPaging | PageNumberPaging | OffsetPaging


# The config's `paging:` block: one of the styles above, chosen by `style`; none without it.
Paging = Annotated[PagingStyle, Field(discriminator="style"), BeforeValidator(default_tag("style", "none"))]


async def paginate(
    client: httpx.AsyncClient,
    path: str,
    paging: PagingStyle,
    params: dict[str, Any] | None = None,
    max_pages: int = MAX_PAGES,
) -> AsyncIterator[list[Any]]:
    """Yield the records of each page of a listing, following `paging`.

    A failing first page raises PagingError; a failing follow-up page with a client-error status
    raises CursorExpired, because only the cursor changed since a page that worked. A next page
    already read, or page `max_pages` + 1, raises PagingRunaway: an app cannot keep us listing.
    """
    request: PageRequest | None = paging.first(path, dict(params or {}))
    seen: set[str] = set()
    records = 0
    while request is not None:
        if request.key() in seen:
            raise PagingRunaway(
                f"the API returned the same {paging.repeats} twice; stopped after {len(seen)} pages "
                f"(the listing of {path} sent a page it had already sent)"
            )
        if len(seen) >= max_pages:
            raise PagingRunaway(f"the listing of {path} passed {max_pages} pages (max_pages)")
        seen.add(request.key())
        # A followed link carries its own query; passing params (even empty) would replace it.
        response = await client.get(request.url, params=request.params or None)
        if response.status_code != 200:
            if len(seen) > 1 and response.status_code in EXPIRED_CURSOR_STATUS:
                raise CursorExpired(f"HTTP {response.status_code} for a follow-up page of {path}")
            raise PagingError(response)
        body = response.json() if response.content else None
        items = jmespath.search(paging.items, body) or []
        if (heard := page_read.get()) is not None:
            heard(len(items))
        yield items
        request = paging.after(Page(path, request, response, body, items, len(seen) - 1, records))
        records += len(items)


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
