"""Listing every resource of one type in a SCIM app: index-paged (RFC 7644 §3.4.2.4: `startIndex`,
`count`, `totalResults`), or cursor-paged (RFC 9865) where the app offers only cursors.

Pages are as large as the app says it serves (filter.maxResults, RFC 7643 §5; pagination.maxPageSize,
RFC 9865 §4) unless `page_size` is set. A server may sort or scan everything it holds for every
page: scim2-server 0.8 sorts all 100,000 users for each one (about 0.5 s a page), so 1,000-user pages
cost it ~190 s of CPU for the listing and 10,000-user pages ~115 s. What it spends per user it sends
(~1 ms: copies and serialisation) is a floor no client choice lowers: asking for fewer attributes
(RFC 7644 §3.4.2.5) did not make it cheaper.

The first index page says how many resources there are and how many the app puts on a page (it may
cap `count` below what we ask); the other pages are then known in advance and fetched several at
once, up to the target's ceiling on requests in flight and HELD_MAX resources held (the client's
limit still decides how many are really sent together). A cursor names the next page only on the
page before it, so cursor pages come one after another.

Pages are yielded in order. An index-paged listing is only as good as the app's word: resources added
or removed while it is read shift the pages, so the same resource shows twice or one is never seen.
Each page is checked against the first (totalResults unchanged, full pages but the last, nothing
seen twice, the count adds up); cursor pages promise each resource once, so seeing one twice is the
only check there. A listing that fails a check is `ListingUnsettled`, raised after everything was
yielded, so a caller that compares the listing with what should exist (the reconciler) does not take
an account it never saw for a missing one."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.engine.contracts.protocols import ListingUnsettled
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_guards import ListingRunaway
from provisioner.targets.scim_models import page_model

if TYPE_CHECKING:
    from scim2_models import ServiceProviderConfig

log = logging.getLogger("provisioner.targets")

PAGE_UNANNOUNCED = 200  # asked of an app that announces no maximum: it may cap silently, or refuse
PAGE_MAX = 5000  # a larger page saves little more (a tenth of the sorts at most) and risks the timeout
HELD_MAX = 10_000  # resources fetched and not yet yielded: pages in flight x page size

Resources = list[dict[str, Any]]


@dataclass
class _Check:
    """What the pages said, against what the first page promised (`total` None: cursor pages,
    whose count need not add up while the app changes)."""

    total: int | None
    size: int = 0
    seen: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def page(self, start: int, total: int, items: Resources) -> Resources:
        """The index page's resources not seen before; notes what does not add up."""
        assert self.total is not None
        if total != self.total:
            self._note(f"totalResults was {self.total}, then {total} at startIndex {start}")
        expected = min(self.size, self.total - start + 1)
        if len(items) < expected:
            self._note(f"{expected - len(items)} fewer resources than expected at startIndex {start}")
        return self.fresh(items)

    def fresh(self, items: Resources) -> Resources:
        fresh = []
        for item in items:
            key = str(item.get("id"))
            if key in self.seen:
                self._note(f"resource {key} listed twice")
                continue
            self.seen.add(key)
            fresh.append(item)
        return fresh

    def _note(self, problem: str) -> None:
        if len(self.problems) < 5:  # enough to say what happened, not one line per resource
            self.problems.append(problem)

    def settled(self) -> bool:
        total = self.total
        if total is not None and len(self.seen) < total and not any("fewer" in p for p in self.problems):
            self._note(f"{total - len(self.seen)} of {total} resources never listed")
        return not self.problems


def page_size(client: ScimClient, config: ServiceProviderConfig) -> int:
    """Resources to ask for a page: `page_size` if set, else as many as the app announces (at most
    PAGE_MAX); never more than it announces, since some apps refuse a larger `count`."""
    filter_, pagination = config.filter, config.pagination
    caps = [cap for cap in (filter_ and filter_.max_results, pagination and pagination.max_page_size) if cap]
    announced = min(caps) if caps else None
    wanted = client.settings.page_size or (min(announced, PAGE_MAX) if announced else PAGE_UNANNOUNCED)
    return min(wanted, announced) if announced else wanted


def _cursor_only(config: ServiceProviderConfig) -> bool:
    """An app that announces cursors and says index paging is not there (RFC 9865 §4); one that
    announces nothing pages by index (RFC 7644)."""
    pagination = config.pagination
    return bool(pagination and pagination.cursor and pagination.index is False)


def first_page(config: ServiceProviderConfig, count: int) -> dict[str, Any]:
    """The parameters of a first page of `count`: by cursor where the app pages only that way (it
    answers an index 501), else by index."""
    return {"cursor": "", "count": count} if _cursor_only(config) else {"startIndex": 1, "count": count}


async def _page(client: ScimClient, path: str, params: dict[str, Any]) -> tuple[int | None, Resources, str | None]:
    """(totalResults, resources, nextCursor) of one page."""
    page = await client.call("GET", path, params=params)
    # the envelope checked by scim2-models; the resources stay as sent, extensions and all
    envelope = page_model().model_validate({k: v for k, v in page.items() if k != "Resources"})
    return envelope.total_results, list(page.get("Resources") or []), envelope.next_cursor


async def _cursor_pages(
    client: ScimClient, resource: str, query: dict[str, Any], check: _Check
) -> AsyncIterator[Resources]:
    """The first page with an empty cursor, then each page's `nextCursor` until a page has none
    (RFC 9865 §2); the same `count` throughout, as a cursor may be bound to it."""
    cursor = ""
    for _ in range(client.settings.max_pages):
        _, items, cursor_next = await _page(client, f"{resource}s", {**query, "cursor": cursor})
        fresh = check.fresh(items)
        yield fresh
        if not cursor_next or not fresh:  # the end, or a page all seen before: the app repeats itself
            return
        cursor = cursor_next
    raise ListingRunaway(client.name, resource, client.settings.max_pages)


async def _index_pages(
    client: ScimClient, resource: str, query: dict[str, Any], check: _Check
) -> AsyncIterator[Resources]:
    """The first page, then the rest `window` at a time, yielded in order."""

    async def fetch(start: int) -> tuple[int, Resources]:
        total, items, _ = await _page(client, f"{resource}s", {**query, "startIndex": start})
        return total or 0, items

    total, first = await fetch(1)
    if not first or len(first) >= total:
        yield first  # one page: nothing to add up
        return
    size = len(first)  # what the app puts on a page, whatever `count` asked
    check.total, check.size = total, size
    starts = range(1 + size, total + 1, size)
    # totalResults is the app's word: a page limit keeps a lying one from listing us forever.
    if len(starts) + 1 > client.settings.max_pages:
        raise ListingRunaway(client.name, resource, client.settings.max_pages, promised=len(starts) + 1)
    yield check.page(1, total, first)
    window = max(1, min(client.limit.ceiling, HELD_MAX // size))
    pending: deque[tuple[int, asyncio.Task[tuple[int, Resources]]]] = deque()
    upcoming = iter(starts)
    try:
        while True:
            while len(pending) < window and (start := next(upcoming, None)) is not None:
                pending.append((start, asyncio.ensure_future(fetch(start))))
            if not pending:
                break
            start, task = pending.popleft()
            page_total, items = await task
            yield check.page(start, page_total, items)
    finally:
        for _, task in pending:  # the caller stopped early, or a page failed: no request left behind
            task.cancel()
        await asyncio.gather(*(task for _, task in pending), return_exceptions=True)


async def list_resources(
    client: ScimClient,
    resource: str = "User",
    *,
    strict: bool = True,
    filter_: str | None = None,
    excluded: str | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Every `resource` (User, Group) of the app, or those `filter_` selects, in the app's order,
    each once, without the `excluded` attributes. `strict`: raise ListingUnsettled at the end when
    the pages did not add up; else log it (an index that only speeds up lookups heals itself from a
    create's 409)."""
    config = await client.discover()
    query: dict[str, Any] = {"count": page_size(client, config), **({"filter": filter_} if filter_ else {})}
    if excluded:
        query["excludedAttributes"] = excluded
    check = _Check(None)
    pages = _cursor_pages if _cursor_only(config) else _index_pages
    async for items in pages(client, resource, query, check):
        for item in items:
            yield item
    if not check.settled():
        unsettled = ListingUnsettled(client.name, f"{resource}s", check.problems)
        if strict:
            raise unsettled
        log.warning("%s", unsettled)
