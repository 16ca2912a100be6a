# mypy: disable-error-code="empty-body"
"""Group membership for the SCIM writer: groups found (or created) by name, and concurrent
membership changes to one group coalesced into one request (written and confirmed by ScimMembers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from provisioner.engine.contracts.models import Result, ResultStatus, elapsed_ms
from provisioner.engine.contracts.protocols import NameClaims
from provisioner.engine.kit.coalesce import Coalescer
from provisioner.targets.scim_guards import eq
from provisioner.targets.scim_support import (
    ERRORS,
    ScimSettings,
    Unapplied,
    failed,
    failure,
    new_group,
)


class ScimGroups:
    """Mixed into ScimTarget; the attributes below are its own."""

    name: str
    settings: ScimSettings
    _groups: dict[str, str]
    _group_locks: dict[str, asyncio.Lock]
    _member_writers: dict[str, Coalescer[tuple[str, str], str | None]]
    _claims: NameClaims | None  # set when several engines share the app (scim_group_admin.py)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

    if TYPE_CHECKING:  # ScimMembers' (confirmed writes); a stub method here would shadow it

        async def _write_members(self, group_id: str, changes: list[tuple[str, str]]) -> list[str | None]: ...

    async def supports(self, feature: str) -> bool: ...
    async def _shared_group(
        self, name: str, find: Callable[[], Awaitable[str | None]], create: Callable[[], Awaitable[str]] | None
    ) -> str | None: ...
    def _list_resources(self, resource: str = "User") -> AsyncIterator[dict[str, Any]]: ...

    async def _group_id(self, name: str, create: bool) -> str | None:
        if name in self._groups:
            return self._groups[name]
        async with self._group_locks.setdefault(name, asyncio.Lock()):
            if name in self._groups:
                return self._groups[name]
            make = (lambda: self._create_group(name)) if create and self.settings.create_groups else None
            if self._claims is not None:  # several engines: one of them looks or creates (scim_group_admin.py)
                found = await self._shared_group(name, lambda: self._find_group(name), make)
            else:
                found = await self._find_group(name)
                if found is None and make is not None:
                    found = await make()
            if found is not None:
                self._groups[name] = found
            return self._groups.get(name)

    async def _find_group(self, name: str) -> str | None:
        if await self.supports("filter"):
            found = await self._call(
                "GET", "Groups", params={"filter": eq("displayName", name), "excludedAttributes": "members"}
            )
            resources = found.get("Resources") or []
            return str(resources[0]["id"]) if resources else None
        async for group in self._list_resources("Group"):  # no filtering: learn every group's id from one listing
            self._groups.setdefault(str(group.get("displayName")), group["id"])
        return self._groups.get(name)

    async def _create_group(self, name: str, tries: int = 3) -> str:
        """Each POST goes without the transport's retries, and a failed one is followed by a look:
        a blindly repeated POST whose first answer was lost would make a second group of that name
        (displayName is not unique in SCIM)."""
        attempt = 1
        while True:
            try:
                return str(
                    (await self._call("POST", "Groups", json=new_group(name), extensions={"retry": False}))["id"]
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
                group_id = await self._group_id(name, create=True)
                if group_id is None:
                    return failure(start, f"group {name!r} does not exist and create_groups is off", account_id)
                await self._change_members(group_id, "add", account_id)
            for name in remove:
                group_id = await self._group_id(name, create=False)
                if group_id is not None:
                    await self._change_members(group_id, "remove", account_id)
        except ERRORS as exc:
            return failed(start, exc, account_id)
        return Result(
            status=ResultStatus.success,
            account_id=account_id,
            duration_ms=elapsed_ms(start),
            attributes={"groups_added": add, "groups_removed": remove},
        )

    async def _change_members(self, group_id: str, op: str, account_id: str) -> None:
        """Concurrent membership changes to one group become one request (an initial load puts
        thousands of people into `all-staff`: one PATCH — or read-modify-PUT — per batch, not per person)."""
        writer = self._member_writers.get(group_id)
        if writer is None:

            async def send(changes: list[tuple[str, str]], group_id: str = group_id) -> list[str | None]:
                return await self._write_members(group_id, changes)

            writer = self._member_writers[group_id] = Coalescer(send, max_items=500, linger=0.005, serial=True)
        unapplied = await writer.submit((op, account_id))
        if unapplied is not None:
            raise Unapplied(unapplied)
