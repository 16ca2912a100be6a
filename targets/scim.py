"""SCIM 2.0 writer over httpx, with scim2-models for the protocol messages (RFC 7643 / 7644).

Speaking the few calls directly (rather than through scim2-client) keeps the writer small and
exact: we hold attribute paths, not resource types.
What the server announces in /ServiceProviderConfig decides how: PATCH or read-modify-PUT,
filter queries or a listing, single POSTs or /Bulk, If-Match on PUT when it has ETags. What it
really does refines that, learned once per target and logged once: a PATCH it refuses means
read-modify-PUT from then on, a userName filter that compares case-exactly means a listing
confirms a miss, and attributes it does not keep are remembered (`not_kept`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Account, Result, ResultStatus, Worker, elapsed_ms
from provisioner.engine.contracts.profile import TargetProfile
from provisioner.engine.kit.http import RetryPolicy, resilient_client
from provisioner.targets.mapping import apply_attributes, build_resource, flatten, patch_operations
from provisioner.targets.scim_bulk import BulkRequestFailed, ScimBulk
from provisioner.targets.scim_groups import ScimGroups
from provisioner.targets.scim_lookup import ScimLookup
from provisioner.targets.scim_members import ScimMembers
from provisioner.targets.scim_models import config_model, page_model
from provisioner.targets.scim_profile import ScimLearning
from provisioner.targets.scim_support import (  # noqa: F401 - DEFAULT_MAPPING and friends are imported from here
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
    Unapplied,
    advertised_attributes,
    auth_of,
    failed,
    failure,
    is_conflict,
    log,
    patch_body,
    patch_refused,
    raise_for_scim,
    root_attribute,
    scim_error,
)

if TYPE_CHECKING:
    from scim2_models import ServiceProviderConfig


class ScimTarget(ScimLookup, ScimGroups, ScimMembers, ScimLearning, ScimBulk):
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
        auth: httpx.Auth | None = None,
    ):
        self.name = name
        self.settings = settings
        self.paths = mapping_paths
        headers = {"Accept": SCIM_JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
        self._slots = asyncio.Semaphore(concurrency)
        self._bulk = None
        self._bulk_checked = False
        self._bulk_lock = asyncio.Lock()
        self._member_writers = {}
        self._bulk_payload = None
        self.http = resilient_client(
            base_url.rstrip("/") + "/",
            auth=auth,
            headers=headers,
            timeout=timeout,
            policy=policy,
            rate=rate,
            burst=burst,
        )
        self.config: ServiceProviderConfig | None = None
        self._groups = {}
        self._group_locks = {}
        self._index: dict[str, Account] | None = None
        self._index_time = 0.0
        self._advertised: set[str] | None = None
        self._conflicts: set[str] = set()  # lower-cased userNames a create was refused for
        self._user_names: dict[str, str] = {}  # account id → userName, to match members listed by it
        self._save = None
        self._apply(TargetProfile())  # what is learned about the app; the runtime hands in the stored one

    @classmethod
    def from_config(cls, config: TargetConfig, mapping_paths: list[str] | None = None) -> ScimTarget:
        settings = ScimSettings.model_validate(config.settings())
        auth, headers = auth_of(settings, config.token)
        target = cls(
            config.name,
            config.base_url,
            None,
            mapping_paths=mapping_paths or list((config.mapping or DEFAULT_MAPPING).keys()),
            settings=settings,
            timeout=config.timeout,
            policy=RetryPolicy(max_attempts=config.max_attempts),
            concurrency=config.concurrency,
            rate=config.rate_limit,
            burst=config.burst,
            auth=auth,
        )
        target.http.headers.update(headers)
        return target

    @staticmethod
    def default_mapping(config: TargetConfig) -> dict[str, str]:
        return dict(DEFAULT_MAPPING)

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
            announced = await self._call("GET", "ServiceProviderConfig")
            self.config = config_model().model_validate(announced)
            self._judge_config(announced)
        return self.config

    async def supports(self, feature: str) -> bool:
        """patch, bulk, filter, etag, sort, changePassword — as the server announces them."""
        announced = getattr(await self.discover(), feature, None)
        return bool(announced is not None and announced.supported)

    async def check(self) -> list[tuple[str, bool, str]]:
        """(what, passed, detail) rows for `provisioner targets check`: reachable, credentials proven
        by an authenticated read, capabilities, a read of one user and one group, what was learned."""
        try:
            config = await self.discover()
        except httpx.HTTPError as exc:
            return [("reachable", False, scim_error(exc))]
        except ScimError as exc:
            what = "credentials" if exc.status in (401, 403) else "ServiceProviderConfig"
            detail = "credentials refused" if exc.status in (401, 403) else str(exc)
            return [("reachable", True, f"HTTP {exc.status}"), (what, False, detail)]
        rows = [("reachable", True, str(self.http.base_url))]
        try:  # /ServiceProviderConfig may be public (RFC 7644 §4): only a read of users proves the credentials
            users = await self._call("GET", "Users", params={"count": 1, "startIndex": 1})
        except ScimError as exc:
            refused = exc.status in (401, 403)
            return [*rows, ("credentials", False, "credentials refused" if refused else f"reading Users: {exc}")]
        except httpx.HTTPError as exc:
            return [*rows, ("credentials", False, f"reading Users: {scim_error(exc)}")]
        rows.append(("credentials", True, "accepted (read Users)"))
        bulk, filter_ = config.bulk, config.filter
        features = [
            f"patch {'yes' if await self.supports('patch') else 'no'}",
            f"bulk {'max ' + str(bulk.max_operations) if bulk and bulk.supported else 'no'}",
            f"filter {'yes' if filter_ and filter_.supported else 'no'}",
            f"etag {'yes' if await self.supports('etag') else 'no'}",
            f"maxResults {filter_.max_results if filter_ and filter_.max_results else '-'}",
        ]
        rows.append(("capabilities", True, ", ".join(features)))
        for kind, key in (("Users", "userName"), ("Groups", "displayName")):
            try:
                page = users if kind == "Users" else await self._call("GET", kind, params={"count": 1, "startIndex": 1})
            except ERRORS as exc:
                rows.append((f"read one of {kind}", False, scim_error(exc)))
                continue
            first = next(iter(page.get("Resources") or []), None)
            rows.append((f"read one of {kind}", True, str(first.get(key)) if first else f"none yet ({kind} empty)"))
        rows += [(f"learned: {what}", True, detail) for what, detail in self.profile().lessons()]
        return rows

    def _account(self, resource: dict[str, Any]) -> Account:
        if resource.get("userName"):
            self._user_names[str(resource["id"])] = str(resource["userName"])
        return Account(
            id=resource["id"],
            active=resource.get("active", True) is not False,
            attributes=flatten(resource, self.paths),
        )

    # writes
    async def create(self, worker: Worker, attributes: dict[str, Any]) -> Result:
        start = time.perf_counter()
        resource = build_resource(attributes, USER_SCHEMA)
        resource.setdefault("active", True)  # a pre-hire account may be created disabled
        try:
            account = await self._post_user(attributes, resource)
        except ERRORS as exc:
            if is_conflict(exc):
                if attributes.get("userName"):
                    self._conflicts.add(str(attributes["userName"]).lower())
                return Result(status=ResultStatus.skipped, error="conflict", duration_ms=elapsed_ms(start))
            return failed(start, exc)
        if self._index is not None:
            for key in (attributes.get("externalId"), str(attributes.get("userName") or "").lower()):
                if key:
                    self._index[key] = account
        return Result(
            status=ResultStatus.success, account_id=account.id, attributes=attributes, duration_ms=elapsed_ms(start)
        )

    async def _patch_is_the_problem(self, exc: Exception, operations: list[dict[str, Any]]) -> bool:
        """A 501 says so outright; an invalidPath/mutability 400 only when /Schemas advertises every
        attribute we touched (else the mapping is wrong, and a PUT would not help)."""
        if not patch_refused(exc):
            return False
        if isinstance(exc, ScimError) and exc.status == 501:
            return True
        if self._advertised is None:
            try:
                self._advertised = advertised_attributes((await self._call("GET", "Schemas")).get("Resources") or [])
            except ERRORS:
                self._advertised = set()
        return all(root_attribute(op["path"]) in self._advertised for op in operations if op.get("path"))

    async def _change(
        self,
        path: str,
        operations: list[dict[str, Any]],
        mutate: Callable[[dict[str, Any]], None],
        fallback: bool = True,
    ) -> dict[str, Any]:
        """PATCH where the server has it; otherwise read, change only our attributes, PUT it back.
        Returns the resource when the server answered with it."""
        kind = path.split("/", 1)[0]
        if kind in self._put_only or not await self.supports("patch"):
            return await self._put(path, mutate)
        try:
            return await self._call("PATCH", path, json=patch_body(kind, operations))
        except ERRORS as exc:
            if not (fallback and await self._patch_is_the_problem(exc, operations)):
                raise
            self._put_only.add(kind)
            self._learned()
            log.warning("target %s refuses PATCH on %s (%s); read-modify-PUT from now on", self.name, kind, exc)
        return await self._put(path, mutate)

    async def _put(self, path: str, mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """The PUT carries If-Match when the server has ETags; a 412 (someone wrote in between) means
        read again and retry (three attempts). PATCH needs no version: it only touches the named
        attributes."""
        for attempt in range(1, 4):
            resource = await self._call("GET", path)
            version = (resource.get("meta") or {}).get("version")
            mutate(resource)
            resource.pop("meta", None)
            headers = {"If-Match": version} if version and await self.supports("etag") else {}
            try:
                return await self._call("PUT", path, json=resource, headers=headers)
            except ScimError as exc:
                if exc.status != 412 or attempt == 3:
                    raise
        raise AssertionError("unreachable")

    async def _change_user(
        self,
        account_id: str,
        operations: list[dict[str, Any]],
        mutate: Callable[[dict[str, Any]], None],
        attributes: dict[str, Any],
    ) -> Result:
        start = time.perf_counter()
        path = f"Users/{account_id}"
        try:
            answer = await self._change(path, operations, mutate)
            if not answer.get("id"):
                answer = await self._call("GET", path)  # 204 or a bare acknowledgement: read it back once
            wrong = self._judge(attributes, answer)
            if wrong:
                raise Unapplied(f"{'; '.join(wrong)} on user {account_id}")
        except ERRORS as exc:
            return failed(start, exc, account_id)
        return Result(
            status=ResultStatus.success, account_id=account_id, attributes=attributes, duration_ms=elapsed_ms(start)
        )

    async def _post_user(self, attributes: dict[str, Any], resource: dict[str, Any]) -> Account:
        """Through /Bulk when the server has it; a /Bulk request that failed as a whole sends this
        create on its own."""
        if await self._bulk_ready():
            try:
                return await self._create_in_bulk(resource)
            except BulkRequestFailed:
                pass
        created = await self._call("POST", "Users", json=resource)
        self._judge(attributes, created)
        return self._account(created)

    async def update(
        self, account_id: str, attributes: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> Result:
        """Attributes the app is known not to keep are not sent again: it would drop them again."""
        sent = {path: value for path, value in attributes.items() if path not in self._not_kept}
        if not sent:
            return Result(status=ResultStatus.success, account_id=account_id, attributes=attributes)
        result = await self._change_user(
            account_id,
            patch_operations(sent, previous or {}),
            lambda resource: apply_attributes(resource, sent),
            sent,
        )
        if result.ok:
            result.attributes = attributes
        return result

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
            left = await self._call("GET", f"Users/{account_id}")
            if left.get("active", True) is not False:  # some apps delete by deactivating: access is gone all the same
                raise Unapplied(f"delete of user {account_id} (it can still be read, active)")
        except ScimError as exc:
            if exc.status != 404:  # gone is what we wanted
                return failed(start, exc, account_id)
        except (httpx.HTTPError, Unapplied) as exc:
            return failed(start, exc, account_id)
        return Result(status=ResultStatus.success, account_id=account_id, duration_ms=elapsed_ms(start))

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
            # the envelope checked by scim2-models; the resources stay as sent, extensions and all
            total = page_model().model_validate({k: v for k, v in page.items() if k != "Resources"}).total_results or 0
            for item in items:
                yield item
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
                for key in self.member_keys(member):
                    member_of.setdefault(key, []).append(name)
        async for resource in self._list_resources():
            account = self._account(resource)
            user_key = f"user:{str(resource.get('userName') or '').lower()}"
            account.groups = sorted({*member_of.get(account.id, []), *member_of.get(user_key, [])})
            yield account

    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None:
        found = await super().lookup(worker, link_id, attributes)
        self._learned()  # how its userName filter compares may have been probed
        return found

    async def aclose(self) -> None:
        await self.http.aclose()
