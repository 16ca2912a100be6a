"""SCIM /Bulk for creates (RFC 7644 §3.7): concurrent creates share one request.

A /Bulk request that fails as a whole (429, 5xx, a lost response) fails no operation by itself:
each create learns it through `BulkRequestFailed` and goes on as one POST, with its own retries.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from scim2_models import ServiceProviderConfig

from provisioner.engine.contracts.models import Account
from provisioner.engine.kit.coalesce import Coalescer
from provisioner.targets.mapping import flatten
from provisioner.targets.scim_support import BULK_SCHEMA, ERRORS, ScimError, ScimSettings

Call = Callable[..., Awaitable[dict[str, Any]]]


class BulkRequestFailed(Exception):
    """The /Bulk request carrying this create failed as a whole; the create itself is undecided."""


class BulkCreates:
    def __init__(self, call: Call, paths: list[str], settings: ScimSettings):
        self._call = call
        self.paths = paths
        self.settings = settings
        self._coalescer: Coalescer[dict[str, Any], dict[str, Any]] | None = None
        self._checked = False
        self._lock = asyncio.Lock()
        self._payload: int | None = None

    async def ready(self, discover: Callable[[], Awaitable[ServiceProviderConfig]]) -> bool:
        """Whether creates go through /Bulk: configured, and announced by the server."""
        if not self._checked:
            async with self._lock:
                if not self._checked:
                    bulk = (await discover()).bulk if self.settings.bulk else None
                    if bulk is not None and bulk.supported:
                        limit = min(self.settings.bulk_max_operations, bulk.max_operations or 1000)
                        self._coalescer = Coalescer(self._send, max_items=limit)
                        self._payload = bulk.max_payload_size
                    self._checked = True
        return self._coalescer is not None

    async def create(self, resource: dict[str, Any]) -> Account:
        assert self._coalescer is not None
        try:
            answer = await self._coalescer.submit(resource)
        except ERRORS as exc:
            raise BulkRequestFailed(str(exc)) from exc
        status = answer.get("status")
        code = int((status.get("code") if isinstance(status, dict) else status) or 0)  # older drafts: {code}
        if code in (200, 201) and answer.get("location"):
            account_id = str(answer["location"]).rstrip("/").rsplit("/", 1)[-1]
            return Account(id=account_id, active=True, attributes=flatten(resource, self.paths))
        response = answer.get("response")
        error: dict[str, Any] = response if isinstance(response, dict) else {}
        raise ScimError(code, error.get("scimType"), str(error.get("detail") or "bulk operation failed"))

    async def _send(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": resource}
            for i, resource in enumerate(resources)
        ]
        body = json.dumps({"schemas": [BULK_SCHEMA], "Operations": operations}).encode()
        if self._payload and len(body) > self._payload and len(resources) > 1:
            half = len(resources) // 2  # over the server's maxPayloadSize: two smaller requests
            return [*await self._send(resources[:half]), *await self._send(resources[half:])]
        answer = await self._call("POST", "Bulk", content=body, headers={"Content-Type": "application/scim+json"})
        by_id = {op.get("bulkId"): op for op in answer.get("Operations") or []}
        missing = {"status": "500", "response": {"detail": "the bulk response left this operation out"}}
        return [by_id.get(f"u{i}", missing) for i in range(len(resources))]
