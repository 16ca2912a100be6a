"""How one SCIM resource is changed: PATCH where the app has it, else (or once it refused a PATCH it
announced) read-modify-PUT, with If-Match when it has ETags."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_support import (
    ERRORS,
    ScimError,
    advertised_attributes,
    log,
    patch_body,
    patch_refused,
    root_attribute,
)

# How long one group's read-modify-write may hold the engines' lease (and the longest wait for it):
# a GET and a PUT of the group, each within the client's timeouts.
GROUP_WRITE_SECONDS = 30.0


class Changes:
    """Writes of whole attributes to one resource (a user, a group), as the app takes them."""

    def __init__(self, client: ScimClient):
        self.client = client
        self._advertised: set[str] | None = None  # attribute names /Schemas announces, asked once

    async def _patch_is_the_problem(self, exc: Exception, operations: list[dict[str, Any]]) -> bool:
        """A 501 says so outright; an invalidPath/mutability 400 only when /Schemas advertises every
        attribute we touched (else the mapping is wrong, and a PUT would not help)."""
        if not patch_refused(exc):
            return False
        if isinstance(exc, ScimError) and exc.status == 501:
            return True
        if self._advertised is None:
            try:
                self._advertised = advertised_attributes(
                    (await self.client.call("GET", "Schemas")).get("Resources") or []
                )
            except ERRORS:
                self._advertised = set()
        return all(root_attribute(op["path"]) in self._advertised for op in operations if op.get("path"))

    async def change(
        self,
        path: str,
        operations: list[dict[str, Any]],
        mutate: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """PATCH where the server has it; otherwise read, change only our attributes, PUT it back.
        Returns the resource when the server answered with it."""
        kind = path.split("/", 1)[0]
        if kind in self.client.lessons.put_only or not await self.client.supports("patch"):
            return await self.put(path, mutate)
        try:
            return await self.client.call("PATCH", path, json=patch_body(kind, operations))
        except ERRORS as exc:
            if not await self._patch_is_the_problem(exc, operations):
                raise
            refused = exc
        # Learned only once a PUT does it: an app that refuses the attribute in a PUT as well is
        # refusing the attribute, not PATCH, and PATCH stays the way to write the rest.
        answer = await self.put(path, mutate)
        self.client.lessons.put_only.add(kind)
        self.client.lessons.learned()
        log.warning("target %s refuses PATCH on %s (%s); read-modify-PUT from now on", self.client.name, kind, refused)
        return answer

    async def exclusive(self, path: str, versioned: bool = True) -> AbstractAsyncContextManager[Any]:
        """Held around a group's read-modify-write: without a version to check, two engines writing
        one group at once both confirm their write and the later one silently undoes the other's
        (a removed mover is back in the group). Within one engine the group's Coalescer is serial;
        across engines a lease in the shared store orders them. A `versioned` write (a PUT with
        If-Match, where the app has ETags) needs none, and neither does a user: its changes all
        come from one partition, so from one engine."""
        if (
            self.client.claims is None
            or not path.startswith("Groups/")
            or (versioned and await self.client.supports("etag"))
        ):
            return nullcontext()
        return self.client.claims.hold(
            self.client.name, "group-write", path.removeprefix("Groups/"), GROUP_WRITE_SECONDS
        )

    async def put(self, path: str, mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """The PUT carries If-Match when the server has ETags; a 412 (someone wrote in between) means
        read again and retry (three attempts). PATCH needs no version: it only touches the named
        attributes."""
        async with await self.exclusive(path):
            return await self._put_versioned(path, mutate)

    async def _put_versioned(self, path: str, mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        for attempt in range(1, 4):
            resource = await self.client.call("GET", path)
            version = (resource.get("meta") or {}).get("version")
            mutate(resource)
            resource.pop("meta", None)
            headers = {"If-Match": version} if version and await self.client.supports("etag") else {}
            try:
                return await self.client.call("PUT", path, json=resource, headers=headers)
            except ScimError as exc:
                if exc.status != 412 or attempt == 3:
                    raise
        raise AssertionError("unreachable")
