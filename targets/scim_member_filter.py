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
import uuid
from typing import Any

from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_guards import eq
from provisioner.targets.scim_support import ERRORS, ScimError, Unconfirmed, log

# A group read whole with this many members is large: the app is probed for the filter while such a
# group can still be read whole to compare with. (Asked one account at a time only once a group is
# too large to read: on the servers measured, one question costs about what a whole read does.)
LARGE_GROUP = 5_000


class MemberFilter:
    """Asks the app whether accounts are members of a group, one filter request per account."""

    def __init__(self, client: ScimClient):
        self.client = client
        self.large: set[str] = set()  # group ids seen too large to read back whole
        self._probed = False  # in this process: a probe that met an error is tried again next run

    @property
    def usable(self) -> bool:
        lessons = self.client.lessons
        return lessons.member_filter is True and not lessons.members_by_user_name

    async def read(self, group_id: str, listed: int, confirmed: list[str]) -> None:
        """A whole read of the group listed `listed` members, among them the accounts `confirmed`
        (just added, and listed by id): once per app, past LARGE_GROUP, the probe."""
        if listed >= LARGE_GROUP and confirmed:
            await self._learn(group_id, confirmed[-1])

    def too_large(self, group_id: str, group: str, cap: int) -> None:
        """The group answers more than `cap` bytes: asked one account at a time from now on, or
        Unconfirmed where the app's filter is not known to answer right."""
        self.large.add(group_id)
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

    async def _learn(self, group_id: str, member: str) -> None:
        """Compare the filter's answers with the whole read that just listed `member` by its id (the
        account the engine just added: the newest, where an app that looks at only part of a long
        list would miss it): it must be found, answered without the member list, and a made-up id
        must not be. Never fails the write it follows: an error leaves the lesson to the next process."""
        lessons = self.client.lessons
        if lessons.member_filter is not None or lessons.members_by_user_name or self._probed:
            return
        self._probed = True
        stranger = str(uuid.uuid4())  # shaped like the ids most apps give: refused as malformed by none
        try:
            found, small = await self._is_member(group_id, member)
            wrongly, _ = await self._is_member(group_id, stranger)
        except ScimError as exc:
            if exc.status in (400, 403, 405, 501):  # refused: the app will not be asked this way
                found, small, wrongly = False, False, False
            else:
                return self._not_probed(exc)  # the moment, not the filter
        except ERRORS as exc:
            return self._not_probed(exc)
        lessons.member_filter = found and small and not wrongly
        log.info(
            "target %s: %s",
            self.client.name,
            "a group too large to read is asked about one account at a time (its member filter answers right)"
            if lessons.member_filter
            else "a group too large to read cannot be confirmed (its member filter answers otherwise)",
        )
        lessons.learned()

    def _not_probed(self, exc: Exception) -> None:
        log.warning("target %s: could not probe its member filter (%s); probed again next run", self.client.name, exc)
