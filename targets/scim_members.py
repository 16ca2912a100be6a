"""Group membership writes that count only when the app shows them.

Apps differ in the member changes they apply: the RFC's filter path (`members[value eq "id"]`),
the value list Microsoft Entra ID sends (`path: members, value: [...]`), a `replace` of the whole
list, or a read-modify-PUT; some answer 200 to a form and change nothing, some ignore `members` in
a PUT. Each write is therefore read back (from the answer when it carries the members, else one
GET), the forms are tried in order until one is confirmed, and the one that worked is learned.
Members are matched by id, by a `$ref` ending in the id, or by userName (one server lists
`members[].value` as the userName). A group too large to read back is asked about one account at a
time, where the app is known to answer that right (`scim_member_filter.py`).
"""

from __future__ import annotations

from typing import Any

from provisioner.engine.contracts.profile import AdditionForm, RemovalForm
from provisioner.engine.kit.limits import ResponseTooLarge
from provisioner.targets.scim_change import Changes
from provisioner.targets.scim_client import ScimClient
from provisioner.targets.scim_guards import eq
from provisioner.targets.scim_member_filter import MemberFilter
from provisioner.targets.scim_support import ERRORS, PATCH_SCHEMA, ScimError, Unconfirmed, log

ADDITION_FORMS: tuple[AdditionForm, ...] = ("patch", "replace", "put")
REMOVAL_FORMS: tuple[RemovalForm, ...] = ("filter", "value", "replace", "put")


class Members:
    """Membership writes to the app's groups, each confirmed by what the app then shows."""

    def __init__(self, client: ScimClient, changes: Changes, group_names: dict[str, str]):
        self.client = client
        self.changes = changes
        self.lessons = client.lessons
        self.group_names = group_names  # name → id as the writer knows them: failures name the group
        self.check = MemberFilter(client)  # for groups too large to read back whole

    async def write(self, group_id: str, changes: list[tuple[str, str]]) -> list[str | None]:
        """One answer per change: None once the app shows it, else why not (a coalesced batch fails
        only the people the app did not take it for)."""
        wanted: dict[str, bool] = {}
        for op, account_id in changes:  # within one batch the last word for an account wins
            wanted[account_id] = op == "add"
        unapplied: dict[str, str] = {}
        for present in (True, False):
            ids = [account_id for account_id, add in wanted.items() if add is present]
            if ids:
                unapplied |= await self._members_to(group_id, ids, present)
        return [unapplied.get(account_id) for _, account_id in changes]

    async def _members_to(self, group_id: str, ids: list[str], present: bool) -> dict[str, str]:
        """Put these accounts in (or take them out of) the group, trying the app's forms until one
        is confirmed, the learned form first; what no form achieved, with what was tried."""
        path = f"Groups/{group_id}"
        forms: tuple[str, ...] = ADDITION_FORMS if present else REMOVAL_FORMS
        learned = self.lessons.addition if present else self.lessons.removal
        if "Groups" in self.lessons.put_only or not await self.client.supports("patch"):
            forms = ("put",)
        elif learned is not None:
            forms = (learned, *(form for form in forms if form != learned))
        tried: list[str] = []
        missing = ids
        for form in forms:
            try:
                answer = await self._send_members(form, path, missing, present)
                refused = False
            except ResponseTooLarge as exc:  # a read-modify-write form's read, or a refusal's answer
                before = f" (tried {'; '.join(tried)})" if tried else ""
                raise Unconfirmed(
                    f"cannot change group {self._name(group_id)!r} by {form}: it answers more than {exc.cap} "
                    f"bytes (the target's max_response_bytes); raise max_response_bytes{before}"
                ) from None
            except ScimError as exc:
                if exc.status not in (400, 405, 409, 422, 501):
                    raise  # credentials, a missing group, an overloaded app: not a question of form
                tried.append(f"{form} refused ({exc})")
                answer, refused = {}, True
            missing = await self._not_yet(group_id, answer, missing, present)
            if not missing:
                if not refused:  # already as wanted after a refusal says nothing about the form
                    self._learn_form(form, present)
                return {}
            if not refused:
                tried.append(f"{form} answered success")
        what = f"{'add to' if present else 'remove from'} group {self._name(group_id)!r} (tried {'; '.join(tried)})"
        return {account_id: what for account_id in missing}

    def _learn_form(self, form: str, present: bool) -> None:
        if present and self.lessons.addition != form:
            self.lessons.addition = form  # type: ignore[assignment]
        elif not present and self.lessons.removal != form:
            self.lessons.removal = form  # type: ignore[assignment]
        else:
            return
        log.info("target %s: group members are %s with %r", self.client.name, "added" if present else "removed", form)
        self.lessons.learned()

    async def _send_members(self, form: str, path: str, ids: list[str], present: bool) -> dict[str, Any]:
        values = [{"value": account_id} for account_id in ids]
        gone = set(ids) | {f"user:{self.client.user_names[i].lower()}" for i in ids if i in self.client.user_names}

        def mutate(group: dict[str, Any]) -> None:
            kept = [m for m in group.get("members") or [] if not gone.intersection(member_keys(m))]
            group["members"] = kept + (values if present else [])

        if form == "put":
            return await self.changes.put(path, mutate)
        if form == "replace":  # sent without If-Match, so leased even where the app has ETags
            async with await self.changes.exclusive(path, versioned=False):
                group = await self.client.call("GET", path)
                mutate(group)
                operations = [{"op": "replace", "path": "members", "value": group["members"]}]
                return await self.client.call("PATCH", path, json=_patch(operations), unread_ok=True)
        if form == "filter":
            # (an id is the app's word: quoted as any filter value, never able to end the string)
            operations = [{"op": "remove", "path": f"members[{eq('value', account_id)}]"} for account_id in ids]
        else:  # "patch" adds, "value" removes: the value-list form
            operations = [{"op": "add" if present else "remove", "path": "members", "value": values}]
        # (an answer too large to read is a success read back by filter: `_not_yet`)
        return await self.client.call("PATCH", path, json=_patch(operations), unread_ok=True)

    async def _not_yet(self, group_id: str, answer: dict[str, Any], ids: list[str], present: bool) -> list[str]:
        """The accounts whose membership the app does not (yet) show as wanted."""
        path = f"Groups/{group_id}"
        if not answer.get("id") or "members" not in answer:  # 204, or an answer without the members
            if group_id in self.check.large and self.check.usable:
                return self._differing(await self.check.members(group_id, ids), ids, present)
            try:
                answer = await self.client.call("GET", path)
            except ResponseTooLarge as exc:
                self.check.too_large(group_id, self._name(group_id), exc.cap)
                return self._differing(await self.check.members(group_id, ids), ids, present)
        members = answer.get("members") or []
        held = {key for member in members for key in member_keys(member)}
        if held:  # not listed by id: the app may list userNames (asked once per account)
            await self._names_of([account_id for account_id in ids if account_id not in held])
        differing = [account_id for account_id in ids if self._listed(held, account_id) is not present]
        await self.check.read(group_id, len(members), [i for i in ids if present and i in held])
        return differing

    @staticmethod
    def _differing(members: set[str], ids: list[str], present: bool) -> list[str]:
        return [account_id for account_id in ids if (account_id in members) is not present]

    def _name(self, group_id: str) -> str:
        return next((n for n, known in self.group_names.items() if known == group_id), group_id)

    async def _names_of(self, ids: list[str]) -> None:
        for account_id in ids:
            if account_id not in self.client.user_names:
                try:
                    user = await self.client.call("GET", f"Users/{account_id}")
                except ERRORS:
                    continue
                self.client.user_names[account_id] = str(user.get("userName") or "")

    def _listed(self, held: set[str], account_id: str) -> bool:
        """Whether the member keys of a group hold this account: by id or `$ref`, or by its userName."""
        if account_id in held:
            return True
        name = self.client.user_names.get(account_id)
        if not name or f"user:{name.lower()}" not in held:
            return False
        if not self.lessons.members_by_user_name:
            self.lessons.members_by_user_name = True
            self.lessons.member_filter = None  # a probe by a listed userName proved nothing about ids
            log.warning("target %s lists group members by userName, not by id", self.client.name)
            self.lessons.learned()
        return True


def member_keys(member: dict[str, Any]) -> list[str]:
    """The keys a listed member may be found under: its value, the id its `$ref` ends in, and
    (lower-cased, for apps that list userNames) `user:<value>`."""
    value = str(member.get("value") or "")
    keys = [value, f"user:{value.lower()}"]
    ref = str(member.get("$ref") or "").rstrip("/")
    if ref:
        keys.append(ref.rsplit("/", 1)[-1])
    return keys


def _patch(operations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": operations}
