"""Finding the account a worker already has in a SCIM app: by link, externalId, userName (whatever
its case) or email; through filter queries, or a listing when that is cheaper or the only way."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from provisioner.engine.contracts.models import Account, Worker
from provisioner.engine.contracts.protocols import ListingUnsettled
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_guards import eq
from provisioner.targets.scim_listing import list_resources
from provisioner.targets.scim_support import INDEX_TTL, PRIME_THRESHOLD, ScimError, log

FULL_INDEX_TTL = 15 * 60.0  # a whole listing at least this often: deletions by others show only there
INDEX_OVERLAP = timedelta(seconds=5)


def _modified(resource: dict[str, Any]) -> datetime | None:
    value = (resource.get("meta") or {}).get("lastModified")
    try:
        stamp = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC) if stamp is not None and stamp.tzinfo is None else stamp


class AccountLookup:
    """The accounts of one app by externalId, userName and email: an index from listings where
    that is cheaper, filter queries otherwise."""

    def __init__(self, client: ScimClient):
        self.client = client
        self.index: dict[str, Account] | None = None
        self.index_time = 0.0
        # Incremental refresh: the newest meta.lastModified the index holds (the app's own clock), when
        # it was last listed whole, and whether the app filters on meta.lastModified (learned once).
        self.index_stamp: datetime | None = None
        self.index_listed = 0.0
        self.filters_modified: bool | None = None
        self.conflicts: set[str] = set()  # lower-cased userNames a create was refused for

    def fresh(self) -> bool:
        return self.index is not None and time.monotonic() - self.index_time < INDEX_TTL

    async def prime(self, expected_lookups: int) -> None:
        """List the target once when a batch would otherwise send many filter queries."""
        if self.fresh():
            return  # our own creates keep it current; 409 on create covers what others add meanwhile
        if expected_lookups < PRIME_THRESHOLD and await self.client.supports("filter"):
            self.index = None
            return
        await self._refresh_index()

    async def _refresh_index(self) -> None:
        """Only what changed since the last listing (`meta.lastModified gt` a little before the
        newest change the index holds) where the app filters on it; else, and every
        FULL_INDEX_TTL (deletions show only there), the whole app. Under load every engine process
        re-listed 20,000 accounts each INDEX_TTL."""
        whole_due = time.monotonic() - self.index_listed > FULL_INDEX_TTL
        if self.index is not None and self.index_stamp is not None and not whole_due:
            if self.filters_modified is not False and await self._changes_since(self.index_stamp):
                self.index_time = time.monotonic()
                return
        await self._build_index()

    async def _changes_since(self, stamp: datetime) -> bool:
        """Merge the accounts changed since `stamp` (minus an overlap for writes the app committed
        out of order) into the index; False when the app cannot filter on meta.lastModified."""
        since = (stamp - INDEX_OVERLAP).isoformat()
        try:
            if self.filters_modified is None:
                # Learned once: nobody was modified after this, so an app that answers someone ignores the filter.
                future = {"filter": 'meta.lastModified gt "2999-01-01T00:00:00+00:00"', "count": 1}
                if (await self.client.call("GET", "Users", params=future)).get("Resources"):
                    return self._learn_modified_filter(False, "it answered accounts modified in 2999")
            # Paged as a whole listing is (by cursor where the app pages only so, max_pages kept).
            changed = [r async for r in list_resources(self.client, filter_=f'meta.lastModified gt "{since}"')]
        except ListingUnsettled:
            return False  # the app changed while it was read: listed whole this time
        except ScimError as exc:
            if exc.status not in (400, 403, 501):
                raise
            return self._learn_modified_filter(False, f"refused it ({exc})")
        if any((_modified(r) or stamp) <= stamp - INDEX_OVERLAP for r in changed):
            return self._learn_modified_filter(False, "answered accounts older than asked")
        self._learn_modified_filter(True, "")
        for resource in changed:
            self._add(resource)
        return True

    def _learn_modified_filter(self, works: bool, why: str) -> bool:
        if self.filters_modified is None and not works:
            log.info(
                "target %s: no filter on meta.lastModified (%s); its index is re-listed whole", self.client.name, why
            )
        self.filters_modified = works
        return works

    async def _build_index(self) -> None:
        self.index, self.index_stamp = {}, None
        async for resource in list_resources(self.client, strict=False):
            self._add(resource)
        self.index_time = self.index_listed = time.monotonic()

    def _add(self, resource: dict[str, Any]) -> None:
        assert self.index is not None
        account = self.client.account(resource)
        for key in (resource.get("externalId"), str(resource.get("userName", "")).lower()):
            if key:
                self.index[key] = account
        for item in resource.get("emails") or []:
            if isinstance(item, dict) and item.get("value"):
                self.index.setdefault(f"email:{str(item['value']).lower()}", account)
        modified = _modified(resource)
        if modified is not None and (self.index_stamp is None or modified > self.index_stamp):
            self.index_stamp = modified

    def _from_index(self, external_id: Any, user_name: Any, email: str | None) -> Account | None:
        assert self.index is not None
        return (
            self.index.get(external_id or "")
            or self.index.get(str(user_name or "").lower())
            or (self.index.get(f"email:{email.lower()}") if email else None)
        )

    async def _search(self, filter_: str) -> list[dict[str, Any]]:
        found = await self.client.call("GET", "Users", params={"filter": filter_, "count": 2})
        return list(found.get("Resources") or [])

    async def _filters_case_exact(self) -> bool:
        """userName is caseExact=false (RFC 7643 §4.1.1), yet some servers filter it case-exactly:
        ask for an existing userName with its case swapped, once."""
        if self.client.lessons.case_exact_filter is None:
            listed = (await self.client.call("GET", "Users", params={"count": 1})).get("Resources") or []
            first: dict[str, Any] = next(iter(listed), {})
            name = str(first.get("userName") or "")
            if name.lower() == name.upper():
                return False  # nobody to try it on yet (or no letters): nothing to miss either
            self.client.lessons.case_exact_filter = not await self._search(eq("userName", name.swapcase()))
            if self.client.lessons.case_exact_filter:
                log.warning(
                    "target %s filters userName case-exactly; a miss is confirmed in a listing", self.client.name
                )
            self.client.lessons.learned()
        return self.client.lessons.case_exact_filter

    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None:
        """By link, then externalId, then userName (then work email, with `match_email`): never a duplicate.
        userName matches whatever its case."""
        if link_id:
            try:
                return self.client.account(await self.client.call("GET", f"Users/{link_id}"))
            except ScimError as exc:
                if exc.status != 404:
                    raise
        external_id = attributes.get("externalId")
        user_name = attributes.get("userName")
        email = (
            (attributes.get('emails[type eq "work"].value') or worker.work_email)
            if self.client.settings.match_email
            else None
        )
        if not self.fresh() and not await self.client.supports("filter"):
            await self._refresh_index()  # no filter queries on this server: look it up in a listing
        if self.index is not None and self.fresh():
            found = self._from_index(external_id, user_name, email)
            if found is not None or str(user_name or "").lower() not in self.conflicts:
                return found
        else:
            for attr, value in (("externalId", external_id), ("userName", user_name), ("emails.value", email)):
                if value:
                    hits = await self._search(eq(attr, value))
                    if hits:
                        return self.client.account(hits[0])
        # A miss the server may not mean: it refused a create for this userName, or its filter is case-exact.
        if user_name and (str(user_name).lower() in self.conflicts or await self._filters_case_exact()):
            await self._refresh_index()
            return self._from_index(external_id, user_name, email)
        return None

    def created(self, attributes: dict[str, Any], account: Account) -> None:
        """Our own creates keep a listed index current."""
        if self.index is not None:
            for key in (attributes.get("externalId"), str(attributes.get("userName") or "").lower()):
                if key:
                    self.index[key] = account

    def refused(self, attributes: dict[str, Any]) -> None:
        """A create was refused as a conflict: a miss for this userName is confirmed in a listing."""
        if attributes.get("userName"):
            self.conflicts.add(str(attributes["userName"]).lower())
