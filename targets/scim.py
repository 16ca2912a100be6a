"""SCIM 2.0 writer over httpx, with scim2-models for the protocol messages (RFC 7643 / 7644).

scim2-client 0.13 ships an engine for httpx2 only, and its unchecked-payload mode needs resource
types where we hold paths; speaking the few calls directly keeps the writer small and exact.
What the server announces in /ServiceProviderConfig decides how: PATCH or read-modify-PUT,
filter queries or a listing, single POSTs or /Bulk, If-Match on PUT when it has ETags.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from scim2_models import ServiceProviderConfig

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Account, Result, ResultStatus, Worker, elapsed_ms
from provisioner.engine.kit.coalesce import Coalescer
from provisioner.engine.kit.http import RetryPolicy, resilient_client
from provisioner.targets.mapping import apply_attributes, build_resource, flatten, patch_operations
from provisioner.targets.scim_bulk import BulkCreates, BulkRequestFailed
from provisioner.targets.scim_support import (  # noqa: F401 - DEFAULT_MAPPING and friends are imported from here
    BULK_SCHEMA,
    DEFAULT_MAPPING,
    ENTERPRISE,
    ERRORS,
    INDEX_TTL,
    PATCH_SCHEMA,
    PRIME_THRESHOLD,
    SCIM_JSON,
    USER_SCHEMA,
    ScimError,
    ScimSettings,
    failed,
    failure,
    is_conflict,
    raise_for_scim,
    scim_error,
)


class ScimTarget:
    """One SCIM service provider. Calls return Results; HTTP errors never escape as exceptions."""

    def __init__(
        self,
        name: str,
        base_url: str,
        token: str | None,
        *,
        mapping_paths: list[str],
        settings: ScimSettings,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        concurrency: int = 8,
        rate: float | None = None,
        burst: int | None = None,
    ):
        self.name = name
        self.settings = settings
        self.paths = mapping_paths
        headers = {"Accept": SCIM_JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
        self._slots = asyncio.Semaphore(concurrency)
        self._member_writers: dict[str, Coalescer[tuple[str, str], None]] = {}
        self._bulk = BulkCreates(self._call, mapping_paths, settings)
        # externalIds whose create answered 409: their next lookup asks the server, never the index
        self._conflicted: set[str] = set()
        self.http = resilient_client(
            base_url.rstrip("/") + "/", headers=headers, timeout=timeout, policy=policy, rate=rate, burst=burst
        )
        self.config: ServiceProviderConfig | None = None
        self._groups: dict[str, str] = {}
        self._group_locks: dict[str, asyncio.Lock] = {}
        self._index: dict[str, Account] | None = None
        self._index_time = 0.0

    @classmethod
    def from_config(cls, config: TargetConfig, mapping_paths: list[str] | None = None) -> ScimTarget:
        return cls(
            config.name,
            config.base_url,
            config.token.get_secret_value() if config.token else None,
            mapping_paths=mapping_paths or list((config.mapping or DEFAULT_MAPPING).keys()),
            settings=ScimSettings.model_validate(config.settings()),
            timeout=config.timeout,
            policy=RetryPolicy(max_attempts=config.max_attempts),
            concurrency=config.concurrency,
            rate=config.rate_limit,
            burst=config.burst,
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async with self._slots:  # the target's own limit, whatever number of workers are in flight
            response = await self.http.request(method, path, **kwargs)
        raise_for_scim(response)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    async def discover(self) -> ServiceProviderConfig:
        """What the service provider supports (RFC 7643 §5), asked once."""
        if self.config is None:
            self.config = ServiceProviderConfig.model_validate(await self._call("GET", "ServiceProviderConfig"))
        return self.config

    def _account(self, resource: dict[str, Any]) -> Account:
        return Account(
            id=resource["id"],
            active=resource.get("active", True) is not False,
            attributes=flatten(resource, self.paths),
        )

    async def _search(self, filter_: str) -> list[dict[str, Any]]:
        found = await self._call("GET", "Users", params={"filter": filter_, "count": 2})
        return list(found.get("Resources") or [])

    # lookups
    def _index_fresh(self) -> bool:
        return self._index is not None and time.monotonic() - self._index_time < INDEX_TTL

    async def prime(self, expected_lookups: int) -> None:
        """List the target once when a batch would otherwise send many filter queries."""
        if self._index_fresh():
            return  # our own creates keep it current; 409 on create covers what others add meanwhile
        if expected_lookups < PRIME_THRESHOLD and await self.supports("filter"):
            self._index = None
            return
        await self._build_index()

    async def _build_index(self) -> None:
        index: dict[str, Account] = {}
        async for resource in self._list_resources():
            account = self._account(resource)
            for key in (resource.get("externalId"), str(resource.get("userName", "")).lower()):
                if key:
                    index[key] = account
            for item in resource.get("emails") or []:
                if isinstance(item, dict) and item.get("value"):
                    index.setdefault(f"email:{str(item['value']).lower()}", account)
        self._index, self._index_time = index, time.monotonic()

    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None:
        """By link, then externalId, then userName (then work email, with `match_email`): never a duplicate."""
        if link_id:
            try:
                return self._account(await self._call("GET", f"Users/{link_id}"))
            except ScimError as exc:
                if exc.status != 404:
                    raise
        external_id = attributes.get("externalId")
        user_name = attributes.get("userName")
        email = (
            (attributes.get('emails[type eq "work"].value') or worker.work_email) if self.settings.match_email else None
        )
        conflicted = str(external_id or user_name or "")
        if conflicted in self._conflicted:
            self._conflicted.discard(conflicted)
            return await self._find_on_server(external_id, user_name, email)
        if not self._index_fresh() and not await self.supports("filter"):
            await self._build_index()  # no filter queries on this server: look it up in a listing
        if self._index is not None and self._index_fresh():
            return self._indexed(external_id, user_name, email)
        return await self._filtered(external_id, user_name, email)

    async def _find_on_server(self, external_id: Any, user_name: Any, email: Any) -> Account | None:
        """After a 409 the account exists, whatever our index says (a lost response, a create by
        someone else): ask the server afresh, by externalId, then userName, then in a new listing."""
        if await self.supports("filter"):
            found = await self._filtered(external_id, user_name, email)
            if found is not None:
                return found
        await self._build_index()
        return self._indexed(external_id, user_name, email)

    def _indexed(self, external_id: Any, user_name: Any, email: Any) -> Account | None:
        index = self._index or {}
        return (
            index.get(external_id or "")
            or index.get(str(user_name or "").lower())
            or (index.get(f"email:{str(email).lower()}") if email else None)
        )

    async def _filtered(self, external_id: Any, user_name: Any, email: Any) -> Account | None:
        for attr, value in (("externalId", external_id), ("userName", user_name), ("emails.value", email)):
            if value:
                escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
                found = await self._search(f'{attr} eq "{escaped}"')
                if found:
                    return self._account(found[0])
        return None

    # writes
    async def create(self, worker: Worker, attributes: dict[str, Any]) -> Result:
        start = time.perf_counter()
        resource = build_resource(attributes, USER_SCHEMA)
        resource.setdefault("active", True)  # a pre-hire account may be created disabled
        try:
            account = await self._post_user(resource)
        except ERRORS as exc:
            if is_conflict(exc):
                self._conflicted.add(str(attributes.get("externalId") or attributes.get("userName") or ""))
                return Result(status=ResultStatus.skipped, error="conflict", duration_ms=elapsed_ms(start))
            return failed(start, exc)
        if self._index is not None:
            for key in (attributes.get("externalId"), str(attributes.get("userName") or "").lower()):
                if key:
                    self._index[key] = account
        return Result(
            status=ResultStatus.success, account_id=account.id, attributes=attributes, duration_ms=elapsed_ms(start)
        )

    async def _post_user(self, resource: dict[str, Any]) -> Account:
        """Through /Bulk when the server has it; a failed /Bulk request sends this one on its own."""
        if await self._bulk.ready(self.discover):
            try:
                return await self._bulk.create(resource)
            except BulkRequestFailed:
                pass  # the request failed, not this operation: it goes out alone, with its own retries
        return self._account(await self._call("POST", "Users", json=resource))

    async def supports(self, feature: str) -> bool:
        """patch, bulk, filter, etag, sort, changePassword — as the server announces them."""
        announced = getattr(await self.discover(), feature, None)
        return bool(announced is not None and announced.supported)

    async def _change(
        self, path: str, operations: list[dict[str, Any]], mutate: Callable[[dict[str, Any]], None]
    ) -> None:
        """PATCH where the server has it; otherwise read, change only our attributes, PUT it back.

        The PUT carries If-Match when the server has ETags; a 412 (someone wrote in between) means
        read again and retry (three attempts). PATCH needs no version: it only touches the named
        attributes."""
        if await self.supports("patch"):
            await self._call("PATCH", path, json={"schemas": [PATCH_SCHEMA], "Operations": operations})
            return
        for attempt in range(1, 4):
            resource = await self._call("GET", path)
            version = (resource.get("meta") or {}).get("version")
            mutate(resource)
            resource.pop("meta", None)
            headers = {"If-Match": version} if version and await self.supports("etag") else {}
            try:
                await self._call("PUT", path, json=resource, headers=headers)
                return
            except ScimError as exc:
                if exc.status != 412 or attempt == 3:
                    raise

    async def _change_user(
        self,
        account_id: str,
        operations: list[dict[str, Any]],
        mutate: Callable[[dict[str, Any]], None],
        attributes: dict[str, Any],
    ) -> Result:
        start = time.perf_counter()
        try:
            await self._change(f"Users/{account_id}", operations, mutate)
        except ERRORS as exc:
            return failed(start, exc, account_id)
        return Result(
            status=ResultStatus.success, account_id=account_id, attributes=attributes, duration_ms=elapsed_ms(start)
        )

    async def update(
        self, account_id: str, attributes: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> Result:
        return await self._change_user(
            account_id,
            patch_operations(attributes, previous or {}),
            lambda resource: apply_attributes(resource, attributes),
            attributes,
        )

    async def _set_active(self, account_id: str, active: bool) -> Result:
        return await self._change_user(
            account_id,
            [{"op": "replace", "path": "active", "value": active}],
            lambda resource: resource.__setitem__("active", active),
            {"active": active},
        )

    async def enable(self, account_id: str) -> Result:
        return await self._set_active(account_id, True)

    async def disable(self, account_id: str) -> Result:
        return await self._set_active(account_id, False)

    async def delete(self, account_id: str) -> Result:
        start = time.perf_counter()
        try:
            await self._call("DELETE", f"Users/{account_id}")
        except ScimError as exc:
            if exc.status != 404:  # already gone is what we wanted
                return failed(start, exc, account_id)
        except httpx.HTTPError as exc:
            return failed(start, exc, account_id)
        return Result(status=ResultStatus.success, account_id=account_id, duration_ms=elapsed_ms(start))

    # groups
    async def _group_id(self, name: str, create: bool) -> str | None:
        if name in self._groups:
            return self._groups[name]
        async with self._group_locks.setdefault(name, asyncio.Lock()):
            if name in self._groups:
                return self._groups[name]
            if await self.supports("filter"):
                escaped = name.replace('"', '\\"')
                found = await self._call(
                    "GET", "Groups", params={"filter": f'displayName eq "{escaped}"', "excludedAttributes": "members"}
                )
                resources = found.get("Resources") or []
            else:  # no filtering: learn every group's id from one listing
                async for group in self._list_resources("Group"):
                    self._groups.setdefault(str(group.get("displayName")), group["id"])
                resources = [{"id": self._groups[name]}] if name in self._groups else []
            if resources:
                self._groups[name] = resources[0]["id"]
            elif create and self.settings.create_groups:
                created = await self._call(
                    "POST",
                    "Groups",
                    json={
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": name,
                        "members": [],
                    },
                )
                self._groups[name] = created["id"]
            return self._groups.get(name)

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

            async def send(changes: list[tuple[str, str]], group_id: str = group_id) -> list[None]:
                await self._write_members(group_id, changes)
                return [None] * len(changes)

            writer = self._member_writers[group_id] = Coalescer(send, max_items=500, linger=0.005, serial=True)
        await writer.submit((op, account_id))

    async def _write_members(self, group_id: str, changes: list[tuple[str, str]]) -> None:
        added = [{"value": account_id} for op, account_id in changes if op == "add"]
        operations = ([{"op": "add", "path": "members", "value": added}] if added else []) + [
            {"op": "remove", "path": f'members[value eq "{account_id}"]'} for op, account_id in changes if op != "add"
        ]

        def mutate(group: dict[str, Any]) -> None:
            for op, account_id in changes:
                (_add_member if op == "add" else _remove_member)(group, account_id)

        await self._change(f"Groups/{group_id}", operations, mutate)  # serial: one write per group at a time

    # listing
    async def _list_resources(self, resource: str = "User") -> AsyncIterator[dict[str, Any]]:
        config = await self.discover()
        # The server may cap a page below what we ask (filter.maxResults); follow what it returns.
        count = (
            min(self.settings.page_size, config.filter.max_results or self.settings.page_size)
            if config.filter
            else self.settings.page_size
        )
        start_index = 1
        while True:
            page = await self._call("GET", f"{resource}s", params={"startIndex": start_index, "count": count})
            items = list(page.get("Resources") or [])
            for item in items:
                yield item
            total = int(page.get("totalResults") or 0)
            start_index += len(items)
            if not items or start_index > total:
                return

    async def list_accounts(self) -> AsyncIterator[Account]:
        """Every user, with the names of the groups it is a member of (from one listing of /Groups)."""
        member_of: dict[str, list[str]] = {}
        async for group in self._list_resources("Group"):
            name = str(group.get("displayName"))
            self._groups.setdefault(name, group["id"])
            for member in group.get("members") or []:
                member_of.setdefault(str(member.get("value")), []).append(name)
        async for resource in self._list_resources():
            account = self._account(resource)
            account.groups = sorted(member_of.get(account.id, []))
            yield account

    async def aclose(self) -> None:
        await self.http.aclose()


def _add_member(group: dict[str, Any], account_id: str) -> None:
    members = group.setdefault("members", [])
    if not any(m.get("value") == account_id for m in members):
        members.append({"value": account_id})


def _remove_member(group: dict[str, Any], account_id: str) -> None:
    group["members"] = [m for m in group.get("members") or [] if m.get("value") != account_id]
