# mypy: disable-error-code="empty-body"
"""Group membership writes that count only when the app shows them.

Apps differ in the member changes they apply: the RFC's filter path (`members[value eq "id"]`),
the value list Microsoft Entra ID sends (`path: members, value: [...]`), a `replace` of the whole
list, or a read-modify-PUT; some answer 200 to a form and change nothing, some ignore `members` in
a PUT. Each write is therefore read back (from the answer when it carries the members, else one
GET), the forms are tried in order until one is confirmed, and the one that worked is learned.
Members are matched by id, by a `$ref` ending in the id, or by userName (one server lists
`members[].value` as the userName).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provisioner.engine.contracts.profile import AdditionForm, RemovalForm
from provisioner.targets.scim_support import ERRORS, ScimError, Unapplied, log

ADDITION_FORMS: tuple[AdditionForm, ...] = ("patch", "replace", "put")
REMOVAL_FORMS: tuple[RemovalForm, ...] = ("filter", "value", "replace", "put")


class ScimMembers:
    """Mixed into ScimTarget; the attributes below are its own."""

    name: str
    _put_only: set[str]
    _addition: AdditionForm | None
    _removal: RemovalForm | None
    _members_by_user_name: bool
    _user_names: dict[str, str]

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...
    async def supports(self, feature: str) -> bool: ...
    async def _put(self, path: str, mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]: ...

    if TYPE_CHECKING:  # ScimLearning's; a stub method here would shadow it (it comes later in the MRO)

        def _learned(self) -> None: ...

    async def _write_members(self, group_id: str, changes: list[tuple[str, str]]) -> None:
        wanted: dict[str, bool] = {}
        for op, account_id in changes:  # within one batch the last word for an account wins
            wanted[account_id] = op == "add"
        for present in (True, False):
            ids = [account_id for account_id, add in wanted.items() if add is present]
            if ids:
                await self._members_to(f"Groups/{group_id}", ids, present)

    async def _members_to(self, path: str, ids: list[str], present: bool) -> None:
        """Put these accounts in (or take them out of) the group, trying the app's forms until one
        is confirmed; the learned form first."""
        forms: tuple[str, ...] = ADDITION_FORMS if present else REMOVAL_FORMS
        learned = self._addition if present else self._removal
        if "Groups" in self._put_only or not await self.supports("patch"):
            forms = ("put",)
        elif learned is not None:
            forms = (learned, *(form for form in forms if form != learned))
        tried: list[str] = []
        missing = ids
        for form in forms:
            try:
                answer = await self._send_members(form, path, missing, present)
            except ScimError as exc:
                if exc.status not in (400, 405, 409, 422, 501):
                    raise  # credentials, a missing group, an overloaded app: not a question of form
                tried.append(f"{form} refused ({exc})")
                answer = {}
            missing = await self._not_yet(path, answer, missing, present)
            if not missing:
                self._learn_form(form, present)
                return
            if not tried or not tried[-1].startswith(form):
                tried.append(f"{form} answered success")
        what = "add to" if present else "remove from"
        raise Unapplied(
            f"{what} group {path.split('/', 1)[1]}: {', '.join(map(str, missing))} (tried {'; '.join(tried)})"
        )

    def _learn_form(self, form: str, present: bool) -> None:
        if present and self._addition != form:
            self._addition = form  # type: ignore[assignment]
        elif not present and self._removal != form:
            self._removal = form  # type: ignore[assignment]
        else:
            return
        log.info("target %s: group members are %s with %r", self.name, "added" if present else "removed", form)
        self._learned()

    async def _send_members(self, form: str, path: str, ids: list[str], present: bool) -> dict[str, Any]:
        values = [{"value": account_id} for account_id in ids]

        def mutate(group: dict[str, Any]) -> None:
            kept = [m for m in group.get("members") or [] if not self._holds_one(m, ids)]
            group["members"] = kept + (values if present else [])

        if form == "put":
            return await self._put(path, mutate)
        if form == "replace":
            group = await self._call("GET", path)
            mutate(group)
            operations = [{"op": "replace", "path": "members", "value": group["members"]}]
        elif form == "filter":
            operations = [{"op": "remove", "path": f'members[value eq "{account_id}"]'} for account_id in ids]
        else:  # "patch" adds, "value" removes: the value-list form
            operations = [{"op": "add" if present else "remove", "path": "members", "value": values}]
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}
        return await self._call("PATCH", path, json=body)

    async def _not_yet(self, path: str, answer: dict[str, Any], ids: list[str], present: bool) -> list[str]:
        """The accounts whose membership the app does not (yet) show as wanted."""
        if not answer.get("id") or "members" not in answer:
            answer = await self._call("GET", path)  # 204, or an answer without the members
        members = list(answer.get("members") or [])
        if members:  # not listed by id: the app may list userNames (asked once per account)
            await self._names_of([account_id for account_id in ids if not self._holds(members, account_id)])
        return [account_id for account_id in ids if self._holds(members, account_id) is not present]

    async def _names_of(self, ids: list[str]) -> None:
        for account_id in ids:
            if account_id not in self._user_names:
                try:
                    user = await self._call("GET", f"Users/{account_id}")
                except ERRORS:
                    continue
                self._user_names[account_id] = str(user.get("userName") or "")

    def _holds_one(self, member: dict[str, Any], ids: list[str]) -> bool:
        return any(self._is(member, account_id) for account_id in ids)

    def _holds(self, members: list[dict[str, Any]], account_id: str) -> bool:
        return any(self._is(member, account_id) for member in members)

    def _is(self, member: dict[str, Any], account_id: str) -> bool:
        value = str(member.get("value") or "")
        if value == account_id or str(member.get("$ref") or "").rstrip("/").endswith(f"/{account_id}"):
            return True
        name = self._user_names.get(account_id)
        if name and value.lower() == name.lower():
            if not self._members_by_user_name:
                self._members_by_user_name = True
                log.warning("target %s lists group members by userName, not by id", self.name)
                self._learned()
            return True
        return False

    def member_keys(self, member: dict[str, Any]) -> list[str]:
        """The keys a listed member may be found under: its value, the id its `$ref` ends in, and
        (lower-cased, for apps that list userNames) `user:<value>`."""
        value = str(member.get("value") or "")
        keys = [value, f"user:{value.lower()}"]
        ref = str(member.get("$ref") or "").rstrip("/")
        if ref:
            keys.append(ref.rsplit("/", 1)[-1])
        return keys
