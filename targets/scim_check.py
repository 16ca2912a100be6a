"""The reads of a SCIM app that are not lookups: `targets check` (reachable, credentials proven by
an authenticated read, capabilities, one user and one group, what was learned) and the listing the
reconciler compares against (every user with the groups it is a member of)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from provisioner.engine.contracts.models import Account
from provisioner.engine.kit.limits import ResponseTooLarge
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_listing import first_page, list_resources
from provisioner.targets.scim_members import member_keys
from provisioner.targets.scim_support import ERRORS, ScimError, scim_error


async def check(client: ScimClient) -> list[tuple[str, bool, str]]:
    """(what, passed, detail) rows for `provisioner targets check`: reachable, credentials proven
    by an authenticated read, capabilities, a read of one user and one group, what was learned."""
    try:
        config = await client.discover()
    except httpx.HTTPError as exc:
        return [("reachable", False, scim_error(exc))]
    except ScimError as exc:
        what = "credentials" if exc.status in (401, 403) else "ServiceProviderConfig"
        detail = "credentials refused" if exc.status in (401, 403) else str(exc)
        return [("reachable", True, f"HTTP {exc.status}"), (what, False, detail)]
    rows = [("reachable", True, str(client.http.base_url))]
    try:  # /ServiceProviderConfig may be public (RFC 7644 §4): only a read of users proves the credentials
        users = await client.call("GET", "Users", params=first_page(config, 1))
    except ScimError as exc:
        refused = exc.status in (401, 403)
        return [*rows, ("credentials", False, "credentials refused" if refused else f"reading Users: {exc}")]
    except httpx.HTTPError as exc:
        return [*rows, ("credentials", False, f"reading Users: {scim_error(exc)}")]
    rows.append(("credentials", True, "accepted (read Users)"))
    bulk, filter_ = config.bulk, config.filter
    features = [
        f"patch {'yes' if await client.supports('patch') else 'no'}",
        f"bulk {'max ' + str(bulk.max_operations) if bulk and bulk.supported else 'no'}",
        f"filter {'yes' if filter_ and filter_.supported else 'no'}",
        f"etag {'yes' if await client.supports('etag') else 'no'}",
        f"maxResults {filter_.max_results if filter_ and filter_.max_results else '-'}",
    ]
    rows.append(("capabilities", True, ", ".join(features)))
    for kind, key in (("Users", "userName"), ("Groups", "displayName")):
        try:
            page = users if kind == "Users" else await client.call("GET", kind, params=first_page(config, 1))
        except ERRORS as exc:
            rows.append((f"read one of {kind}", False, scim_error(exc)))
            continue
        first = next(iter(page.get("Resources") or []), None)
        rows.append((f"read one of {kind}", True, str(first.get(key)) if first else f"none yet ({kind} empty)"))
    rows += [(f"learned: {what}", True, detail) for what, detail in client.lessons.profile().lessons()]
    return rows


async def list_accounts(client: ScimClient, groups: dict[str, str], unread: set[str]) -> AsyncIterator[Account]:
    """Every user, with the names of the groups it is a member of (from one listing of /Groups);
    `groups` (name → id, as the writer knows them) learns every group's id on the way, `unread` the
    groups whose members could not be read."""
    member_of: dict[str, list[str]] = {}
    for group in await read_groups(client, unread):
        name = str(group.get("displayName"))
        groups.setdefault(name, group["id"])
        for member in group.get("members") or []:
            for key in member_keys(member):
                member_of.setdefault(key, []).append(name)
    async for resource in list_resources(client):
        account = client.account(resource)
        user_key = f"user:{str(resource.get('userName') or '').lower()}"
        account.groups = sorted({*member_of.get(account.id, []), *member_of.get(user_key, [])})
        yield account


async def read_groups(client: ScimClient, unread: set[str]) -> list[dict[str, Any]]:
    """Every group with its members. A listing page over max_response_bytes (an all-staff group of a
    large company answers megabytes) is listed again without members and each group read on its
    own: one still too large comes without them, its name in `unread` (its members are not
    compared, and the reconciliation says so), so one large group never keeps the rest from being
    judged. `unread` is replaced with what this listing found."""
    unread.clear()
    try:
        return [group async for group in list_resources(client, "Group")]
    except ResponseTooLarge:
        pass
    found = []
    async for bare in list_resources(client, "Group", excluded="members"):
        try:
            found.append(await client.call("GET", f"Groups/{bare['id']}"))
        except ResponseTooLarge:
            found.append({key: value for key, value in bare.items() if key != "members"})
            unread.add(str(bare.get("displayName")))
        except ScimError as exc:
            if exc.status != 404:
                raise
            # deleted since it was listed: gone, as a listing a moment later would show
    return found
