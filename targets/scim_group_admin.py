"""Groups that exist once per app across every engine process, and merging the duplicates an
earlier version (or another tool) left behind.

SCIM does not make displayName unique, so two engines that each look for `staff`, find nothing
and create it make two groups, and members split between them. With `share_names` the writer
claims (target, group name) through the runtime (the store) before it looks or creates: the
winner creates the group and settles its id, the others wait for that id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from provisioner.engine.contracts.protocols import GroupInfo, NameClaims
from provisioner.targets.scim_groups import ScimGroups

WAIT_FOR_OTHER_S = 60.0  # another engine creating the group: beyond this, the action fails and is retried


class ScimGroupAdmin(ScimGroups):
    """Mixed into ScimTarget, in front of the group writes it extends."""

    def share_names(self, claims: NameClaims) -> None:
        self._claims = claims

    async def _shared_group(
        self, name: str, find: Callable[[], Awaitable[str | None]], create: Callable[[], Awaitable[str]] | None
    ) -> str | None:
        """The group's id, looked for (and created when `create` is given) by one engine at a time."""
        assert self._claims is not None
        deadline = time.monotonic() + WAIT_FOR_OTHER_S
        while True:
            won, remote_id = await self._claims.claim(self.name, "group", name)
            if remote_id is not None:
                return remote_id
            if won:
                found: str | None = None
                try:
                    found = await find()
                    if found is None and create is not None:
                        found = await create()
                finally:  # None (nothing found, or the create failed) gives the claim up
                    await self._claims.settle(self.name, "group", name, found)
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"another engine has been creating group {name!r} for {WAIT_FOR_OTHER_S:.0f}s")
            await asyncio.sleep(0.2)

    async def list_groups(self) -> list[GroupInfo]:
        groups: list[GroupInfo] = []
        async for group in self._list_resources("Group"):
            members = tuple(str(m["value"]) for m in group.get("members") or [] if m.get("value"))
            groups.append(GroupInfo(str(group["id"]), str(group.get("displayName")), members))
        return groups

    async def merge_groups(self, keep: str, others: list[str]) -> None:
        """Members of the others join `keep` (coalesced into one write), then the others are deleted."""
        members: list[str] = []
        for other in others:
            group = await self._call("GET", f"Groups/{other}")
            members += [str(m["value"]) for m in group.get("members") or [] if m.get("value")]
        await asyncio.gather(*(self._change_members(keep, "add", member) for member in dict.fromkeys(members)))
        for other in others:
            await self._call("DELETE", f"Groups/{other}")
