"""Creates through /Bulk (RFC 7644 §3.7): concurrent creates share one request.

The request body is assembled as plain JSON on purpose: building it from scim2-models' typed
BulkOperation validates every user again (≈0.2 ms each, a tenth of an initial load). The answer is
read with scim2-models' BulkResponse.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from provisioner.engine.contracts.models import Account
from provisioner.engine.kit.coalesce import Coalescer
from provisioner.targets.mapping import flatten
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_models import bulk_response_model
from provisioner.targets.scim_support import ScimError

# written out: reading it from scim2-models' BulkRequest would import the package at start-up
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


class BulkRequestFailed(Exception):
    """The /Bulk request carrying this create failed as a whole; the create itself is undecided."""


class Bulk:
    """Creates of users through /Bulk, where the app offers it (`ready()`)."""

    def __init__(self, client: ScimClient):
        self.client = client
        self._bulk: Coalescer[dict[str, Any], dict[str, Any]] | None = None
        self._checked = False
        self._lock = asyncio.Lock()
        self._payload: int | None = None  # the app's maxPayloadSize

    async def ready(self) -> bool:
        if not self._checked:
            async with self._lock:
                if not self._checked:
                    bulk = (await self.client.discover()).bulk if self.client.settings.bulk else None
                    if bulk is not None and bulk.supported:
                        limit = min(self.client.settings.bulk_max_operations, bulk.max_operations or 1000)
                        self._bulk = Coalescer(self._send_bulk, max_items=limit)
                        self._payload = bulk.max_payload_size
                    self._checked = True
        return self._bulk is not None

    async def create(self, resource: dict[str, Any]) -> Account:
        assert self._bulk is not None
        try:
            answer = await self._bulk.submit(resource)
        except (ScimError, httpx.HTTPError) as exc:
            # Every create of that request sees this: each goes on alone, with its own retries,
            # rather than all failing together.
            raise BulkRequestFailed(str(exc)) from exc
        status = answer.get("status")
        code = int((status.get("code") if isinstance(status, dict) else status) or 0)  # older drafts: {code}
        if code in (200, 201) and answer.get("location"):
            account_id = str(answer["location"]).rstrip("/").rsplit("/", 1)[-1]
            return Account(id=account_id, active=True, attributes=flatten(resource, self.client.paths))
        response = answer.get("response")
        error: dict[str, Any] = response if isinstance(response, dict) else {}
        raise ScimError(code, error.get("scimType"), str(error.get("detail") or "bulk operation failed"))

    async def _send_bulk(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": resource}
            for i, resource in enumerate(resources)
        ]
        body = json.dumps({"schemas": [BULK_SCHEMA], "Operations": operations}).encode()
        if self._payload and len(body) > self._payload and len(resources) > 1:
            half = len(resources) // 2  # over the server's maxPayloadSize: two smaller requests
            return [*await self._send_bulk(resources[:half]), *await self._send_bulk(resources[half:])]
        answer = await self.client.call("POST", "Bulk", content=body, headers={"Content-Type": "application/scim+json"})
        by_id = {op.get("bulkId"): op for op in _operations(answer)}
        missing = {"status": "500", "response": {"detail": "the bulk response left this operation out"}}
        return [by_id.get(f"u{i}", missing) for i in range(len(resources))]


def _operations(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer's operations as sent (status as a code or an older draft's {code}), once
    scim2-models has checked that it is a BulkResponse."""
    try:
        bulk_response_model().model_validate({**answer, "Operations": []})
    except ValueError as exc:
        raise ScimError(502, None, f"not a SCIM BulkResponse: {exc}") from None
    return list(answer.get("Operations") or [])
