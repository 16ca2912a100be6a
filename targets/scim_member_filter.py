"""Membership asked one account at a time, for a group too large to read back whole.

A member write is confirmed by reading the group (`scim_members.py`). A group of an all-staff kind
at a hundred thousand people answers megabytes for each read, and past the target's
`max_response_bytes` none at all. RFC 7644 §3.4.2.2 lets a client ask instead whether one account
is a member: `GET /Groups?filter=id eq "g" and members[value eq "u"]&attributes=id`, which answers
the group (its id only) or nothing. Apps differ: one answers no group for a member, one refuses the
filter, one answers the whole member list anyway. So the filter is used only once this app has been
seen to answer it exactly as a full read of the same group did, for a member and for an account
that is not one, with a small answer (learned per app, `Lessons.member_filter`).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_guards import eq
from provisioner.targets.scim_support import ScimError, Unconfirmed, log

# A group listing this many members is large: the app is probed for the filter while the group can
# still be read whole to compare with.
LARGE_GROUP = 5_000
# A read of the whole group costs about what this many one-account questions do (bytes answered,
# parsed and served): fewer accounts than its size / this are asked one by one.
MEMBERS_PER_QUESTION = 100


class MemberFilter:
    """Asks the app whether accounts are members of a group, one filter request per account."""

    def __init__(self, client: ScimClient):
        self.client = client
        self.sizes: dict[str, float] = {}  # members each group was last read with (inf: too large to read)
        self._probed = False  # in this process: a probe that met an error is tried again next run

    @property
    def usable(self) -> bool:
        return self.client.lessons.member_filter is True

    def worth(self, group_id: str, accounts: int) -> bool:
        """Whether to ask about these accounts one by one rather than read the group whole."""
        return self.usable and accounts * MEMBERS_PER_QUESTION <= self.sizes.get(group_id, 0)

    async def read(self, group_id: str, members: list[dict[str, Any]]) -> None:
        """A whole read of the group listed these members: its size, and once per app a probe."""
        self.sizes[group_id] = len(members)
        if len(members) >= LARGE_GROUP:  # learned while it can still be read whole to compare with
            await self.learn(group_id, {str(m["value"]) for m in members if m.get("value")})

    def too_large(self, group_id: str, group: str, cap: int) -> None:
        """The group answers more than `cap` bytes: asked one account at a time from now on, or
        Unconfirmed where the app's filter is not known to answer right."""
        self.sizes[group_id] = math.inf
        if not self.usable:
            raise Unconfirmed(
                f"cannot confirm the change to group {group!r}: the group answers more than {cap} bytes "
                f"(the target's max_response_bytes) and target {self.client.name} has not been seen to "
                'answer a member filter (members[value eq "…"]) right; raise max_response_bytes'
            )

    async def members(self, group_id: str, account_ids: list[str]) -> set[str]:
        """Which of these accounts the app holds as members of the group."""
        answers = await asyncio.gather(*(self._is_member(group_id, account_id) for account_id in account_ids))
        return {account_id for account_id, (member, _) in zip(account_ids, answers, strict=True) if member}

    async def _is_member(self, group_id: str, account_id: str) -> tuple[bool, bool]:
        """(listed, answered small): the group is in the answer; it came without its members."""
        params = {"filter": f"{eq('id', group_id)} and members[{eq('value', account_id)}]", "attributes": "id"}
        answer: dict[str, Any] = await self.client.call("GET", "Groups", params=params)
        found = [r for r in answer.get("Resources") or [] if str(r.get("id")) == group_id]
        return bool(found), not any("members" in r for r in found)

    async def learn(self, group_id: str, listed: set[str]) -> None:
        """Compare the filter's answers with a full read of the group that listed these member ids:
        one member must be found (and answered without the member list), an id that is not one must
        not be. Done once per app, while the group is still small enough to read."""
        lessons = self.client.lessons
        if lessons.member_filter is not None or self._probed or not listed or lessons.members_by_user_name:
            return
        self._probed = True
        member, stranger = next(iter(listed)), f"provisioner-probe-{uuid.uuid4().hex}"
        try:
            found, small = await self._is_member(group_id, member)
            wrongly, _ = await self._is_member(group_id, stranger)
        except ScimError as exc:
            if exc.status not in (400, 403, 405, 501):
                return  # the moment, not the filter: asked again in the next process
            found, small, wrongly = False, False, False
        right = found and small and not wrongly
        lessons.member_filter = right
        log.info(
            "target %s: a group's members %s",
            self.client.name,
            "are checked one by one with a filter once it is large"
            if right
            else "can only be checked by reading the whole group (its member filter answers otherwise)",
        )
        lessons.learned()
