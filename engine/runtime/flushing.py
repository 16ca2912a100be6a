"""When the pipeline records: outcomes are written in groups, not one transaction each."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


async def gathered(
    changed: asyncio.Condition, done: Callable[[], int], pending: Callable[[], int], size: int, interval: float
) -> None:
    """Wait for a first outcome `done`, then until `size` of them are, or every `pending` one is,
    or `interval` has passed since the first: a group worth one transaction. `changed` is notified
    as outcomes complete."""
    async with changed:
        await changed.wait_for(lambda: done() > 0)
    deadline = time.monotonic() + interval
    while done() < size and pending() > done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        async with changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
