"""Group membership for the SCIM writer: groups found (or created) by name, once across engines
(scim_group_admin.py), concurrent membership changes to one group coalesced into one request
(written and confirmed by scim_members.py), and merging the duplicate groups an earlier version
(or another tool) left behind."""

from __future__ import annotations

import asyncio
import time

from provisioner.engine.contracts.models import Result, ResultStatus, elapsed_ms
from provisioner.engine.contracts.protocols import GroupInfo
from provisioner.engine.kit.coalesce import Coalescer
from provisioner.targets.scim_change import Changes
from provisioner.targets.scim_check import read_groups
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_group_admin import shared_group
from provisioner.targets.scim_guards import eq
from provisioner.targets.scim_listing import list_resources
from provisioner.targets.scim_members import Members
from provisioner.targets.scim_support import ERRORS, ScimError, Unapplied, failed, failure, new_group


class Groups:
    """The app's groups as the writer uses them: by name, created when missing (`create_groups`)."""

    def __init__(self, client: ScimClient, changes: Changes):
        self.client = client
        self.ids: dict[str, str] = {}  # name → id, as learned
        self.unread: set[str] = set()  # groups the last listing could not read the members of
        self._locks: dict[str, asyncio.Lock] = {}
        self._writers: dict[str, Coalescer[tuple[str, str], str | None]] = {}
        self.members = Members(client, changes, self.ids)

    async def _group_id(self, name: str, create: bool) -> str | None:
        if name in self.ids:
            return self.ids[name]
        async with self._locks.setdefault(name, asyncio.Lock()):
            if name in self.ids:
                return self.ids[name]
            make = (lambda: self._create_group(name)) if create and self.client.settings.create_groups else None
            if self.client.claims is not None:  # several engines: one of them looks or creates
                found = await shared_group(
                    self.client.claims, self.client.name, name, lambda: self._find_group(name), make
                )
            else:
                found = await self._find_group(name)
                if found is None and make is not None:
                    found = await make()
            if found is not None:
                self.ids[name] = found
            return self.ids.get(name)

    async def _find_group(self, name: str) -> str | None:
        if await self.client.supports("filter"):
            found = await self.client.call(
                "GET", "Groups", params={"filter": eq("displayName", name), "excludedAttributes": "members"}
            )
            resources = found.get("Resources") or []
            return str(resources[0]["id"]) if resources else None
        # No filtering: every group's id is learned from one listing.
        async for group in list_resources(self.client, "Group"):
            self.ids.setdefault(str(group.get("displayName")), group["id"])
        return self.ids.get(name)

    async def _create_group(self, name: str, tries: int = 3) -> str:
        """Each POST goes without the transport's retries, and a failed one is followed by a look:
        a blindly repeated POST whose first answer was lost would make a second group of that name
        (displayName is not unique in SCIM)."""
        attempt = 1
        while True:
            try:
                return str(
                    (await self.client.call("POST", "Groups", json=new_group(name), extensions={"retry": False}))["id"]
                )
            except ERRORS:
                found = await self._find_group(name)
                if found is not None:
                    return found
                if attempt >= tries:
                    raise
            await asyncio.sleep(0.2 * attempt)
            attempt += 1

    async def set_groups(self, account_id: str, add: list[str], remove: list[str]) -> Result:
        start = time.perf_counter()
        try:
            for name in add:
                if not await self._change_in(name, "add", account_id):
                    return failure(start, f"group {name!r} does not exist and create_groups is off", account_id)
            for name in remove:
                await self._change_in(name, "remove", account_id)
        except ERRORS as exc:
            return failed(start, exc, account_id)
        return Result(
            status=ResultStatus.success,
            account_id=account_id,
            duration_ms=elapsed_ms(start),
            attributes={"groups_added": add, "groups_removed": remove},
        )

    async def _change_in(self, name: str, op: str, account_id: str) -> bool:
        """Add to (or remove from) the group of this name; False when there is none (and none is
        created). A group deleted in the app since its id was learned (reconcile --fix merging
        duplicates, a person) answers 404: its id is forgotten here and in the engines' shared
        claim, and the group is looked for (or created) once more, instead of every change to it
        failing until a restart."""
        for attempt in (1, 2):
            group_id = await self._group_id(name, create=op == "add")
            if group_id is None:
                return False
            try:
                await self._change_members(group_id, op, account_id)
                return True
            except ScimError as exc:
                if exc.status != 404 or attempt == 2:
                    raise
                if self.ids.get(name) == group_id:
                    del self.ids[name]
                if self.client.claims is not None:
                    await self.client.claims.forget(self.client.name, "group", name, group_id)
        raise AssertionError("unreachable")

    async def _change_members(self, group_id: str, op: str, account_id: str) -> None:
        """Concurrent membership changes to one group become one request (an initial load puts
        thousands of people into `all-staff`: one PATCH — or read-modify-PUT — per batch, not per person)."""
        writer = self._writers.get(group_id)
        if writer is None:

            async def send(changes: list[tuple[str, str]], group_id: str = group_id) -> list[str | None]:
                return await self.members.write(group_id, changes)

            writer = self._writers[group_id] = Coalescer(send, max_items=500, linger=0.005, serial=True)
        unapplied = await writer.submit((op, account_id))
        if unapplied is not None:
            raise Unapplied(unapplied)

    async def list_groups(self) -> list[GroupInfo]:
        groups: list[GroupInfo] = []
        for group in await read_groups(self.client, self.unread):
            members = tuple(str(m["value"]) for m in group.get("members") or [] if m.get("value"))
            groups.append(GroupInfo(str(group["id"]), str(group.get("displayName")), members))
        return groups

    async def merge_groups(self, keep: str, others: list[str]) -> None:
        """Members of the others join `keep` (coalesced into one write), then the others are deleted."""
        members: list[str] = []
        for other in others:
            group = await self.client.call("GET", f"Groups/{other}")
            members += [str(m["value"]) for m in group.get("members") or [] if m.get("value")]
        await asyncio.gather(*(self._change_members(keep, "add", member) for member in dict.fromkeys(members)))
        for other in others:
            await self.client.call("DELETE", f"Groups/{other}")
