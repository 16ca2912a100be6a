"""Listing every resource of one type in a SCIM app, index-paged (RFC 7644 §3.4.2.4:
`startIndex`, `count`, `totalResults`).

The first page says how many resources there are and how many the app puts on a page (it may
cap `count` below what we ask); the other pages are then known in advance and fetched several at
once, up to the target's ceiling on requests in flight (the client's limit still decides how many
are really sent together). One page after another took 118 s for 100,000 accounts of
scim2-server; the time was in the app's round trips, not in our work.

Pages are yielded in order and at most `window` of them are held. An index-paged listing is only
as good as the app's word: resources added or removed while it is read shift the pages, so the
same resource shows twice or one is never seen. Each page is checked against the first
(totalResults unchanged, full pages but the last, nothing seen twice, the count adds up); a
listing that fails a check is `ListingUnsettled`, raised after everything was yielded, so a
caller that compares the listing with what should exist (the reconciler) does not take an
account it never saw for a missing one."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from provisioner.engine.contracts.protocols import ListingUnsettled
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_guards import ListingRunaway
from provisioner.targets.scim_models import page_model

log = logging.getLogger("provisioner.targets")


@dataclass
class _Check:
    """What the pages said, against what the first page promised."""

    total: int
    size: int
    seen: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def page(self, start: int, total: int, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's resources not seen before; notes what does not add up."""
        if total != self.total:
            self._note(f"totalResults was {self.total}, then {total} at startIndex {start}")
        expected = min(self.size, self.total - start + 1)
        if len(items) < expected:
            self._note(f"{expected - len(items)} fewer resources than expected at startIndex {start}")
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
        if len(self.seen) < self.total and not any("fewer" in p for p in self.problems):
            self._note(f"{self.total - len(self.seen)} of {self.total} resources never listed")
        return not self.problems


def _page_size(client: ScimClient, announced_max: int | None) -> int:
    # The server may cap a page below what we ask (filter.maxResults); ask for no more.
    wanted = client.settings.page_size
    return min(wanted, announced_max) if announced_max else wanted


async def list_resources(
    client: ScimClient, resource: str = "User", *, strict: bool = True
) -> AsyncIterator[dict[str, Any]]:
    """Every `resource` (User, Group) of the app, in the app's order, each once. `strict`: raise
    ListingUnsettled at the end when the pages did not add up; else log it (an index that only
    speeds up lookups heals itself from a create's 409)."""
    config = await client.discover()
    count = _page_size(client, config.filter.max_results if config.filter else None)
    path = f"{resource}s"

    async def fetch(start: int) -> tuple[int, list[dict[str, Any]]]:
        page = await client.call("GET", path, params={"startIndex": start, "count": count})
        # the envelope checked by scim2-models; the resources stay as sent, extensions and all
        envelope = page_model().model_validate({k: v for k, v in page.items() if k != "Resources"})
        return envelope.total_results or 0, list(page.get("Resources") or [])

    total, first = await fetch(1)
    if not first or len(first) >= total:
        for item in first:
            yield item
        return
    size = len(first)  # what the app puts on a page, whatever `count` asked
    starts = range(1 + size, total + 1, size)
    # totalResults is the app's word: a page limit keeps a lying one from listing us forever.
    if len(starts) + 1 > client.settings.max_pages:
        raise ListingRunaway(client.name, resource, client.settings.max_pages, promised=len(starts) + 1)
    check = _Check(total, size)
    for item in check.page(1, total, first):
        yield item
    window = max(1, client.limit.ceiling)
    pending: deque[tuple[int, asyncio.Task[tuple[int, list[dict[str, Any]]]]]] = deque()
    upcoming = iter(starts)
    try:
        while True:
            while len(pending) < window and (start := next(upcoming, None)) is not None:
                pending.append((start, asyncio.ensure_future(fetch(start))))
            if not pending:
                break
            start, task = pending.popleft()
            page_total, items = await task
            for item in check.page(start, page_total, items):
                yield item
    finally:
        for _, task in pending:  # the caller stopped early, or a page failed: no request left behind
            task.cancel()
        await asyncio.gather(*(task for _, task in pending), return_exceptions=True)
    if not check.settled():
        unsettled = ListingUnsettled(client.name, f"{resource}s", check.problems)
        if strict:
            raise unsettled
        log.warning("%s", unsettled)
