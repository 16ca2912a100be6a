"""SCIM 2.0 writer over httpx, with scim2-models for the protocol messages (RFC 7643 / 7644).

Speaking the few calls directly (rather than through scim2-client) keeps the writer small and
exact: we hold attribute paths, not resource types.
What the server announces in /ServiceProviderConfig decides how: PATCH or read-modify-PUT,
filter queries or a listing, single POSTs or /Bulk, If-Match on PUT when it has ETags. What it
really does refines that, learned once per target and logged once: a PATCH it refuses means
read-modify-PUT from then on, a userName filter that compares case-exactly means a listing
confirms a miss, and attributes it does not keep are remembered (`not_kept`).

`ScimTarget` is a façade over collaborators that each get what they need when built: the
`ScimClient` (HTTP, discovery, the learned `Lessons`), `Changes` (PATCH or read-modify-PUT),
`AccountLookup`, `Users`, `Groups` (with `Members`) and `Bulk`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Account, Result, Worker
from provisioner.engine.contracts.profile import TargetProfile
from provisioner.engine.contracts.protocols import GroupInfo, NameClaims
from provisioner.targets import scim_check
from provisioner.targets.scim_bulk import Bulk
from provisioner.targets.scim_change import Changes
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_groups import Groups
from provisioner.targets.scim_lookup import AccountLookup
from provisioner.targets.scim_support import DEFAULT_MAPPING, ScimError, ScimSettings
from provisioner.targets.scim_users import Users

if TYPE_CHECKING:
    from scim2_models import ServiceProviderConfig


class ScimTarget:
    """One SCIM service provider. Calls return Results; HTTP errors never escape as exceptions.

    Implements the core Target protocol and the capabilities ListsAccounts, Primes, ChecksItself,
    KnowsNotKept, ListsGroups, SharesNames, ReadsAccount and Learner."""

    def __init__(self, config: TargetConfig, settings: ScimSettings, mapping_paths: list[str]):
        self.name = config.name
        self.client = ScimClient(config, settings, mapping_paths)
        changes = Changes(self.client)
        self.accounts = AccountLookup(self.client)
        self.users = Users(self.client, changes, self.accounts, Bulk(self.client))
        self.groups = Groups(self.client, changes)

    @classmethod
    def from_config(cls, config: TargetConfig, mapping_paths: list[str] | None = None) -> ScimTarget:
        paths = mapping_paths or list((config.mapping or DEFAULT_MAPPING).keys())
        return cls(config, ScimSettings.model_validate(config.settings()), paths)

    @staticmethod
    def default_mapping(config: TargetConfig) -> dict[str, str]:
        return dict(DEFAULT_MAPPING)

    @property
    def http(self) -> httpx.AsyncClient:
        return self.client.http

    async def discover(self) -> ServiceProviderConfig:
        return await self.client.discover()

    # the core Target protocol
    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None:
        return await self.accounts.lookup(worker, link_id, attributes)

    async def create(self, worker: Worker, attributes: dict[str, Any]) -> Result:
        return await self.users.create(worker, attributes)

    async def update(
        self, account_id: str, attributes: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> Result:
        return await self.users.update(account_id, attributes, previous)

    async def enable(self, account_id: str) -> Result:
        return await self.users.set_active(account_id, True)

    async def disable(self, account_id: str) -> Result:
        return await self.users.set_active(account_id, False)

    async def delete(self, account_id: str) -> Result:
        return await self.users.delete(account_id)

    async def set_groups(self, account_id: str, add: list[str], remove: list[str]) -> Result:
        return await self.groups.set_groups(account_id, add, remove)

    async def aclose(self) -> None:
        await self.client.aclose()

    # capabilities
    async def read_account(self, account_id: str) -> tuple[Account, dict[str, Any]] | None:
        """One user as the app answers it (what a writeback template reads), and as the mapping sees it."""
        try:
            resource = await self.client.call("GET", f"Users/{account_id}")
        except ScimError as exc:
            if exc.status == 404:
                return None
            raise
        return self.client.account(resource), resource

    async def prime(self, expected_lookups: int) -> None:
        await self.accounts.prime(expected_lookups)

    def list_accounts(self) -> AsyncIterator[Account]:
        return scim_check.list_accounts(self.client, self.groups.ids, self.groups.unread)

    async def check(self) -> list[tuple[str, bool, str]]:
        return await scim_check.check(self.client)

    def not_kept(self) -> set[str]:
        """Mapped attributes this app answered without after we wrote them: it does not store them."""
        return set(self.client.lessons.not_kept)

    async def list_groups(self) -> list[GroupInfo]:
        return await self.groups.list_groups()

    async def merge_groups(self, keep: str, others: list[str]) -> None:
        await self.groups.merge_groups(keep, others)

    def unread_groups(self) -> frozenset[str]:
        return frozenset(self.groups.unread)

    def share_names(self, claims: NameClaims) -> None:
        self.client.claims = claims

    def profile(self) -> TargetProfile:
        return self.client.lessons.profile()

    def use_profile(self, profile: TargetProfile | None, save: Callable[[TargetProfile], None]) -> None:
        self.client.lessons.use(profile, save)
