"""Groups that exist once per app across every engine process.

SCIM does not make displayName unique, so two engines that each look for `staff`, find nothing
and create it make two groups, and members split between them. With `share_names` the writer
claims (target, group name) through the runtime (the store) before it looks or creates: the
winner creates the group and settles its id, the others wait for that id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from provisioner.engine.contracts.protocols import NameClaims

WAIT_FOR_OTHER_S = 60.0  # another engine creating the group: beyond this, the action fails and is retried


async def shared_group(
    claims: NameClaims,
    target: str,
    name: str,
    find: Callable[[], Awaitable[str | None]],
    create: Callable[[], Awaitable[str]] | None,
) -> str | None:
    """The group's id, looked for (and created when `create` is given) by one engine at a time."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_S
    while True:
        won, remote_id = await claims.claim(target, "group", name)
        if remote_id is not None:
            return remote_id
        if won:
            found: str | None = None
            try:
                found = await find()
                if found is None and create is not None:
                    found = await create()
            finally:  # None (nothing found, or the create failed) gives the claim up
                await claims.settle(target, "group", name, found)
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"another engine has been creating group {name!r} for {WAIT_FOR_OTHER_S:.0f}s")
        await asyncio.sleep(0.2)
