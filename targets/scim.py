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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import CONFLICT, Account, Outcome, Result, ResultStatus, Worker, elapsed_ms
from provisioner.engine.contracts.profile import TargetProfile
from provisioner.engine.kit.adaptive import AdaptiveLimit
from provisioner.engine.kit.http import RetryPolicy, resilient_client
from provisioner.engine.kit.limits import DEFAULT_MAX_RESPONSE
from provisioner.engine.kit.origin import relative_path
from provisioner.targets.mapping import apply_attributes, build_resource, flatten, patch_operations
from provisioner.targets.scim_bulk import BulkRequestFailed, ScimBulk
from provisioner.targets.scim_change import ScimChange
from provisioner.targets.scim_check import ScimCheck
from provisioner.targets.scim_group_admin import ScimGroupAdmin
from provisioner.targets.scim_lookup import ScimLookup
from provisioner.targets.scim_members import ScimMembers
from provisioner.targets.scim_models import config_model
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
    refused_as_invalid,
    root_attribute,
    scim_error,
)

if TYPE_CHECKING:
    from scim2_models import ServiceProviderConfig


# The mixins that implement what others only declare come first: a declared stub would shadow them.
class ScimTarget(ScimChange, ScimCheck, ScimLearning, ScimLookup, ScimGroupAdmin, ScimMembers, ScimBulk):
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
        adaptive: bool = True,
        rate: float | None = None,
        burst: int | None = None,
        auth: httpx.Auth | None = None,
        max_response: int = DEFAULT_MAX_RESPONSE,
    ):
        self.name = name
        self.settings = settings
        self.paths = mapping_paths
        headers = {"Accept": SCIM_JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
        # The target's own limit on requests in flight, whatever number of workers are in flight:
        # found by AIMD up to `concurrency` (kit/adaptive.py), or exactly `concurrency` if not adaptive.
        self.limit = AdaptiveLimit(concurrency, adaptive=adaptive)
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
            limit=self.limit,
            app=f"target {name}",
            max_response=max_response,
        )
        self.config: ServiceProviderConfig | None = None
        self._groups = {}
        self._group_locks = {}
        self._claims = None
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
            adaptive=config.adaptive_concurrency,
            rate=config.rate_limit,
            burst=config.burst,
            auth=auth,
            max_response=config.max_response_bytes,
        )
        target.http.headers.update(headers)
        return target

    @staticmethod
    def default_mapping(config: TargetConfig) -> dict[str, str]:
        return dict(DEFAULT_MAPPING)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.http.request(method, relative_path(self.name, path), **kwargs)
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
                return Result(
                    status=ResultStatus.skipped, outcome=Outcome.conflict, error=CONFLICT, duration_ms=elapsed_ms(start)
                )
            return failed(start, exc)
        if self._index is not None:
            for key in (attributes.get("externalId"), str(attributes.get("userName") or "").lower()):
                if key:
                    self._index[key] = account
        return Result(
            status=ResultStatus.success, account_id=account.id, attributes=attributes, duration_ms=elapsed_ms(start)
        )

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
        start = time.perf_counter()
        sent = {path: value for path, value in attributes.items() if path not in self._not_kept}
        if not sent:
            return Result(status=ResultStatus.success, account_id=account_id, attributes=attributes)
        result = await self._update_user(account_id, sent, previous or {})
        if not result.ok and len(sent) > 1 and refused_as_invalid(result.error):
            # One attribute the app refuses must not keep the others out of it: each on its own.
            alone = {
                path: await self._update_user(account_id, {path: value}, previous or {}) for path, value in sent.items()
            }
            refused = [f"{path}: {one.error}" for path, one in alone.items() if not one.ok]
            if not refused:  # it takes them only one at a time: every one is written
                result = Result(status=ResultStatus.success, account_id=account_id, duration_ms=elapsed_ms(start))
            elif len(refused) < len(sent):
                return failure(start, f"{'; '.join(refused)} (the other attributes were written)", account_id)
        if result.ok:
            result.attributes = attributes
        return result

    async def _update_user(self, account_id: str, sent: dict[str, Any], previous: dict[str, Any]) -> Result:
        return await self._change_user(
            account_id, patch_operations(sent, previous), lambda resource: apply_attributes(resource, sent), sent
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
            left = await self._call("GET", f"Users/{account_id}")
            if left.get("active", True) is not False:  # some apps delete by deactivating: access is gone all the same
                raise Unapplied(f"delete of user {account_id} (it can still be read, active)")
        except ScimError as exc:
            if exc.status != 404:  # gone is what we wanted
                return failed(start, exc, account_id)
        except (httpx.HTTPError, Unapplied) as exc:
            return failed(start, exc, account_id)
        return Result(status=ResultStatus.success, account_id=account_id, duration_ms=elapsed_ms(start))

    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None:
        probed = self._case_exact_filter
        found = await super().lookup(worker, link_id, attributes)
        if self._case_exact_filter != probed:  # how its userName filter compares was just learned
            self._learned()
        return found

    async def aclose(self) -> None:
        await self.http.aclose()
