"""SCIM 2.0 writer over httpx, with scim2-models for the protocol messages (RFC 7643 / 7644).

scim2-client 0.13 ships an engine for httpx2 only, and its unchecked-payload mode needs resource
types where we hold paths; speaking the few calls directly keeps the writer small and exact.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict
from scim2_models import Error, ServiceProviderConfig

from engine.coalesce import Coalescer
from engine.config import TargetConfig
from engine.http import RetryPolicy, describe_http_error, resilient_client
from engine.models import Account, Result, ResultStatus, Worker
from targets.mapping import build_resource, flatten, patch_operations

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SCIM_JSON = "application/scim+json, application/json"

DEFAULT_MAPPING = {
    "userName": "{{ worker.work_email or worker.username or worker.id }}",
    "externalId": "{{ worker.id }}",
    "name.givenName": "{{ worker.preferred_name or worker.first_name or '' }}",
    "name.familyName": "{{ worker.last_name or '' }}",
    "displayName": "{{ worker.display_name or ((worker.preferred_name or worker.first_name or '') ~ ' ' ~ (worker.last_name or '')) }}",
    'emails[type eq "work"].value': "{{ worker.work_email or '' }}",
    "title": "{{ worker.title or '' }}",
    f"{ENTERPRISE}:employeeNumber": "{{ worker.employee_number or '' }}",
    f"{ENTERPRISE}:department": "{{ worker.department or '' }}",
}

# Below this many lookups in a batch, one filter query each is cheaper than listing the target.
PRIME_THRESHOLD = 25
INDEX_TTL = 60.0


class ScimSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    create_groups: bool = True
    page_size: int = 200
    bulk: bool = True  # use /Bulk for creates when the server offers it
    bulk_max_operations: int = 100


class ScimError(Exception):
    """An error answer from the service provider, parsed with scim2-models' Error schema."""

    def __init__(self, status: int, scim_type: str | None, detail: str):
        super().__init__(f"SCIM error {status}{' ' + scim_type if scim_type else ''}: {detail}")
        self.status = status
        self.scim_type = scim_type


def _raise_for_scim(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    scim_type, detail = None, response.reason_phrase
    try:
        error = Error.model_validate(response.json())
        scim_type, detail = error.scim_type, error.detail or detail
    except ValueError:
        detail = describe_http_error(response)
    raise ScimError(response.status_code, scim_type, detail)


def _timed(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _failure(start: float, error: str, account_id: str | None = None) -> Result:
    return Result(status=ResultStatus.failure, account_id=account_id, error=error, duration_ms=_timed(start))


def _scim_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ScimError) else f"{type(exc).__name__}: {exc}"


def _is_conflict(exc: Exception) -> bool:
    # RFC 7644 says 409 uniqueness; some servers answer 400 with scimType uniqueness.
    return isinstance(exc, ScimError) and (exc.scim_type == "uniqueness" or exc.status == 409)


_ERRORS = (ScimError, httpx.HTTPError)


class ScimTarget:
    """One SCIM service provider. Calls return Results; HTTP errors never escape as exceptions."""

    def __init__(self, name: str, base_url: str, token: str | None, *, mapping_paths: list[str],
                 settings: ScimSettings, timeout: float = 30.0, policy: RetryPolicy | None = None,
                 concurrency: int = 8):
        self.name = name
        self.settings = settings
        self.paths = mapping_paths
        headers = {"Accept": SCIM_JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
        self._slots = asyncio.Semaphore(concurrency)
        self._bulk: Coalescer[dict[str, Any], dict[str, Any]] | None = None
        self._bulk_checked = False
        self._bulk_lock = asyncio.Lock()
        self._bulk_payload: int | None = None
        self.http = resilient_client(base_url.rstrip("/") + "/", headers=headers, timeout=timeout, policy=policy)
        self.config: ServiceProviderConfig | None = None
        self._groups: dict[str, str] = {}
        self._group_locks: dict[str, asyncio.Lock] = {}
        self._index: dict[str, Account] | None = None
        self._index_time = 0.0

    @classmethod
    def from_config(cls, config: TargetConfig, mapping_paths: list[str] | None = None) -> ScimTarget:
        return cls(
            config.name, config.base_url, config.token.get_secret_value() if config.token else None,
            mapping_paths=mapping_paths or list((config.mapping or DEFAULT_MAPPING).keys()),
            settings=ScimSettings.model_validate(config.settings()), timeout=config.timeout,
            policy=RetryPolicy(max_attempts=config.max_attempts), concurrency=config.concurrency,
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async with self._slots:  # the target's own limit, whatever number of workers are in flight
            response = await self.http.request(method, path, **kwargs)
        _raise_for_scim(response)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    async def discover(self) -> ServiceProviderConfig:
        """What the service provider supports (RFC 7643 §5), asked once."""
        if self.config is None:
            self.config = ServiceProviderConfig.model_validate(await self._call("GET", "ServiceProviderConfig"))
        return self.config

    def _account(self, resource: dict[str, Any]) -> Account:
        return Account(id=resource["id"], active=resource.get("active", True) is not False,
                       attributes=flatten(resource, self.paths))

    async def _search(self, filter_: str) -> list[dict[str, Any]]:
        found = await self._call("GET", "Users", params={"filter": filter_, "count": 2})
        return list(found.get("Resources") or [])

    # lookups
    async def prime(self, expected_lookups: int) -> None:
        """List the target once when a batch would otherwise send many filter queries."""
        fresh = self._index is not None and time.monotonic() - self._index_time < INDEX_TTL
        if fresh:
            return  # our own creates keep it current; 409 on create covers what others add meanwhile
        if expected_lookups < PRIME_THRESHOLD:
            self._index = None
            return
        index: dict[str, Account] = {}
        async for resource in self._list_resources():
            account = self._account(resource)
            for key in (resource.get("externalId"), str(resource.get("userName", "")).lower()):
                if key:
                    index[key] = account
        self._index, self._index_time = index, time.monotonic()

    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None:
        """By link, then externalId, then userName: never create a duplicate."""
        if link_id:
            try:
                return self._account(await self._call("GET", f"Users/{link_id}"))
            except ScimError as exc:
                if exc.status != 404:
                    raise
        external_id = attributes.get("externalId")
        user_name = attributes.get("userName")
        if self._index is not None and time.monotonic() - self._index_time < INDEX_TTL:
            return self._index.get(external_id or "") or self._index.get(str(user_name or "").lower())
        for attr, value in (("externalId", external_id), ("userName", user_name)):
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
            if await self._bulk_ready():
                account = await self._create_in_bulk(resource)
            else:
                account = self._account(await self._call("POST", "Users", json=resource))
        except _ERRORS as exc:
            if _is_conflict(exc):
                return Result(status=ResultStatus.skipped, error="conflict", duration_ms=_timed(start))
            return _failure(start, _scim_error(exc))
        if self._index is not None:
            for key in (attributes.get("externalId"), str(attributes.get("userName") or "").lower()):
                if key:
                    self._index[key] = account
        return Result(status=ResultStatus.success, account_id=account.id, attributes=attributes,
                      duration_ms=_timed(start))

    # bulk (RFC 7644 §3.7): concurrent creates share one request
    async def _bulk_ready(self) -> bool:
        if not self._bulk_checked:
            async with self._bulk_lock:
                if not self._bulk_checked:
                    bulk = (await self.discover()).bulk if self.settings.bulk else None
                    if bulk is not None and bulk.supported:
                        limit = min(self.settings.bulk_max_operations, bulk.max_operations or 1000)
                        self._bulk = Coalescer(self._send_bulk, max_items=limit)
                        self._bulk_payload = bulk.max_payload_size
                    self._bulk_checked = True
        return self._bulk is not None

    async def _create_in_bulk(self, resource: dict[str, Any]) -> Account:
        assert self._bulk is not None
        answer = await self._bulk.submit(resource)
        status = answer.get("status")
        code = int((status.get("code") if isinstance(status, dict) else status) or 0)  # older drafts: {code}
        if code in (200, 201) and answer.get("location"):
            account_id = str(answer["location"]).rstrip("/").rsplit("/", 1)[-1]
            return Account(id=account_id, active=True, attributes=flatten(resource, self.paths))
        error = answer.get("response") if isinstance(answer.get("response"), dict) else {}
        raise ScimError(code, error.get("scimType"), str(error.get("detail") or "bulk operation failed"))

    async def _send_bulk(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        operations = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": resource}
                      for i, resource in enumerate(resources)]
        body = json.dumps({"schemas": [BULK_SCHEMA], "Operations": operations}).encode()
        if self._bulk_payload and len(body) > self._bulk_payload and len(resources) > 1:
            half = len(resources) // 2  # over the server's maxPayloadSize: two smaller requests
            return [*await self._send_bulk(resources[:half]), *await self._send_bulk(resources[half:])]
        answer = await self._call("POST", "Bulk", content=body, headers={"Content-Type": "application/scim+json"})
        by_id = {op.get("bulkId"): op for op in answer.get("Operations") or []}
        missing = {"status": "500", "response": {"detail": "the bulk response left this operation out"}}
        return [by_id.get(f"u{i}", missing) for i in range(len(resources))]

    async def _patch(self, account_id: str, operations: list[dict[str, Any]], attributes: dict[str, Any]) -> Result:
        start = time.perf_counter()
        try:
            await self._call("PATCH", f"Users/{account_id}", json={"schemas": [PATCH_SCHEMA], "Operations": operations})
        except _ERRORS as exc:
            return _failure(start, _scim_error(exc), account_id)
        return Result(status=ResultStatus.success, account_id=account_id, attributes=attributes,
                      duration_ms=_timed(start))

    async def update(self, account_id: str, attributes: dict[str, Any],
                     previous: dict[str, Any] | None = None) -> Result:
        return await self._patch(account_id, patch_operations(attributes, previous or {}), attributes)

    async def enable(self, account_id: str) -> Result:
        return await self._patch(account_id, [{"op": "replace", "path": "active", "value": True}], {"active": True})

    async def disable(self, account_id: str) -> Result:
        return await self._patch(account_id, [{"op": "replace", "path": "active", "value": False}],
                                 {"active": False})

    async def delete(self, account_id: str) -> Result:
        start = time.perf_counter()
        try:
            await self._call("DELETE", f"Users/{account_id}")
        except ScimError as exc:
            if exc.status != 404:  # already gone is what we wanted
                return _failure(start, _scim_error(exc), account_id)
        except httpx.HTTPError as exc:
            return _failure(start, _scim_error(exc), account_id)
        return Result(status=ResultStatus.success, account_id=account_id, duration_ms=_timed(start))

    # groups
    async def _group_id(self, name: str, create: bool) -> str | None:
        if name in self._groups:
            return self._groups[name]
        async with self._group_locks.setdefault(name, asyncio.Lock()):
            if name in self._groups:
                return self._groups[name]
            escaped = name.replace('"', '\\"')
            found = await self._call("GET", "Groups", params={
                "filter": f'displayName eq "{escaped}"', "excludedAttributes": "members"})
            resources = found.get("Resources") or []
            if resources:
                self._groups[name] = resources[0]["id"]
            elif create and self.settings.create_groups:
                created = await self._call("POST", "Groups", json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": []})
                self._groups[name] = created["id"]
            return self._groups.get(name)

    async def set_groups(self, account_id: str, add: list[str], remove: list[str]) -> Result:
        start = time.perf_counter()
        try:
            for name in add:
                group_id = await self._group_id(name, create=True)
                if group_id is None:
                    return _failure(start, f"group {name!r} does not exist and create_groups is off", account_id)
                await self._call("PATCH", f"Groups/{group_id}", json={"schemas": [PATCH_SCHEMA], "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": account_id}]}]})
            for name in remove:
                group_id = await self._group_id(name, create=False)
                if group_id is not None:
                    await self._call("PATCH", f"Groups/{group_id}", json={"schemas": [PATCH_SCHEMA], "Operations": [
                        {"op": "remove", "path": f'members[value eq "{account_id}"]'}]})
        except _ERRORS as exc:
            return _failure(start, _scim_error(exc), account_id)
        return Result(status=ResultStatus.success, account_id=account_id, duration_ms=_timed(start),
                      attributes={"groups_added": add, "groups_removed": remove})

    # listing
    async def _list_resources(self, resource: str = "User") -> AsyncIterator[dict[str, Any]]:
        config = await self.discover()
        # The server may cap a page below what we ask (filter.maxResults); follow what it returns.
        count = min(self.settings.page_size, config.filter.max_results or self.settings.page_size) \
            if config.filter else self.settings.page_size
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
        async for resource in self._list_resources():
            yield self._account(resource)

    async def aclose(self) -> None:
        await self.http.aclose()


