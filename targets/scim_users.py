"""User writes for the SCIM writer: create (through /Bulk where the app has it), update, enable,
disable, delete; each confirmed by the app's answer or one read-back, never by its status alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from provisioner.engine.contracts.models import CONFLICT, Account, Outcome, Result, ResultStatus, Worker, elapsed_ms
from provisioner.targets.mapping import apply_attributes, build_resource, patch_operations
from provisioner.targets.scim_bulk import Bulk, BulkRequestFailed
from provisioner.targets.scim_change import Changes
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_lookup import AccountLookup
from provisioner.targets.scim_support import (
    ERRORS,
    USER_SCHEMA,
    ScimError,
    Unapplied,
    failed,
    failure,
    is_conflict,
    refused_as_invalid,
)


class Users:
    """The writes to one app's users; lookups and /Bulk are the collaborators it is given."""

    def __init__(self, client: ScimClient, changes: Changes, lookup: AccountLookup, bulk: Bulk):
        self.client = client
        self.changes = changes
        self.lookup = lookup
        self.bulk = bulk

    async def create(self, worker: Worker, attributes: dict[str, Any]) -> Result:
        start = time.perf_counter()
        resource = build_resource(attributes, USER_SCHEMA)
        resource.setdefault("active", True)  # a pre-hire account may be created disabled
        try:
            account = await self._post(attributes, resource)
        except ERRORS as exc:
            if is_conflict(exc):
                self.lookup.refused(attributes)
                return Result(
                    status=ResultStatus.skipped, outcome=Outcome.conflict, error=CONFLICT, duration_ms=elapsed_ms(start)
                )
            return failed(start, exc)
        self.lookup.created(attributes, account)
        return Result(
            status=ResultStatus.success, account_id=account.id, attributes=attributes, duration_ms=elapsed_ms(start)
        )

    async def _post(self, attributes: dict[str, Any], resource: dict[str, Any]) -> Account:
        """Through /Bulk when the server has it; a /Bulk request that failed as a whole sends this
        create on its own."""
        if await self.bulk.ready():
            try:
                return await self.bulk.create(resource)
            except BulkRequestFailed:
                pass
        created = await self.client.call("POST", "Users", json=resource)
        self.client.lessons.judge(attributes, created)
        return self.client.account(created)

    async def _change(
        self,
        account_id: str,
        operations: list[dict[str, Any]],
        mutate: Callable[[dict[str, Any]], None],
        attributes: dict[str, Any],
    ) -> Result:
        start = time.perf_counter()
        path = f"Users/{account_id}"
        try:
            answer = await self.changes.change(path, operations, mutate)
            if not answer.get("id"):
                answer = await self.client.call("GET", path)  # 204 or a bare acknowledgement: read it back once
            wrong = self.client.lessons.judge(attributes, answer)
            if wrong:
                raise Unapplied(f"{'; '.join(wrong)} on user {account_id}")
        except ERRORS as exc:
            return failed(start, exc, account_id)
        return Result(
            status=ResultStatus.success, account_id=account_id, attributes=attributes, duration_ms=elapsed_ms(start)
        )

    async def update(self, account_id: str, attributes: dict[str, Any], previous: dict[str, Any] | None) -> Result:
        """Attributes the app is known not to keep are not sent again: it would drop them again."""
        start = time.perf_counter()
        sent = {path: value for path, value in attributes.items() if path not in self.client.lessons.not_kept}
        if not sent:
            return Result(status=ResultStatus.success, account_id=account_id, attributes=attributes)
        result = await self._update(account_id, sent, previous or {})
        if not result.ok and len(sent) > 1 and refused_as_invalid(result.error):
            # One attribute the app refuses must not keep the others out of it: each on its own.
            alone = {
                path: await self._update(account_id, {path: value}, previous or {}) for path, value in sent.items()
            }
            refused = [f"{path}: {one.error}" for path, one in alone.items() if not one.ok]
            if not refused:  # it takes them only one at a time: every one is written
                result = Result(status=ResultStatus.success, account_id=account_id, duration_ms=elapsed_ms(start))
            elif len(refused) < len(sent):
                return failure(start, f"{'; '.join(refused)} (the other attributes were written)", account_id)
        if result.ok:
            result.attributes = attributes
        return result

    async def _update(self, account_id: str, sent: dict[str, Any], previous: dict[str, Any]) -> Result:
        return await self._change(
            account_id, patch_operations(sent, previous), lambda resource: apply_attributes(resource, sent), sent
        )

    async def set_active(self, account_id: str, active: bool) -> Result:
        return await self._change(
            account_id,
            [{"op": "replace", "path": "active", "value": active}],
            lambda resource: resource.__setitem__("active", active),
            {"active": active},
        )

    async def delete(self, account_id: str) -> Result:
        start = time.perf_counter()
        try:
            await self.client.call("DELETE", f"Users/{account_id}")
            left = await self.client.call("GET", f"Users/{account_id}")
            if left.get("active", True) is not False:  # some apps delete by deactivating: access is gone all the same
                raise Unapplied(f"delete of user {account_id} (it can still be read, active)")
        except ScimError as exc:
            if exc.status != 404:  # gone is what we wanted
                return failed(start, exc, account_id)
        except (httpx.HTTPError, Unapplied) as exc:
            return failed(start, exc, account_id)
        return Result(status=ResultStatus.success, account_id=account_id, duration_ms=elapsed_ms(start))
