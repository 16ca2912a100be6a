"""What one app was found to do and not do: the learned profile of a target.

A writer learns it by watching the app's answers (a PATCH it refuses, the one member-removal form
that takes effect, attributes it answers without); the runtime keeps it in the store per target
and hands it back to every process, so a fresh `reconcile` knows what the last sync learned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

RemovalForm = Literal["filter", "value", "replace", "put"]
AdditionForm = Literal["patch", "replace", "put"]


class Unapplied(Exception):
    """An app answered success to a write that its answer (or one read-back) shows did not happen:
    a failure, never a success (any writer)."""

    def __init__(self, what: str):
        super().__init__(f"the app answered success but did not apply: {what}")


class TargetProfile(BaseModel):
    put_only: list[str] = Field(default_factory=list)  # resource types whose PATCH the app refuses
    removal: RemovalForm | None = None  # the member-removal form the app was seen to apply
    addition: AdditionForm | None = None  # the member-addition form the app was seen to apply
    not_kept: list[str] = Field(default_factory=list)  # mapped paths the app answers without
    case_exact_filter: bool | None = None  # its userName filter compares case-exactly
    members_by_user_name: bool = False  # it lists a group's members[].value as the userName
    # its answer to `members[value eq "id"]` matched a full read of the group (None: not probed yet)
    member_filter: bool | None = None
    config_hash: str | None = None  # of /ServiceProviderConfig when this was learned
    updated_at: datetime | None = None

    def lessons(self) -> list[tuple[str, str]]:
        """(what, learned) rows for people: `targets check`, the console."""
        rows = [
            ("PATCH refused for", ", ".join(self.put_only) or "nothing"),
            ("member adds", self.addition or "not learned yet"),
            ("member removals", self.removal or "not learned yet"),
            ("not kept", ", ".join(self.not_kept) or "nothing"),
            (
                "userName filter",
                {None: "not probed yet", True: "case-exact", False: "case-insensitive"}[self.case_exact_filter],
            ),
        ]
        rows.append(
            (
                "a group too large to read",
                "cannot be checked: members are listed by userName"
                if self.members_by_user_name
                else {
                    None: "not probed yet (probed when a group first grows large)",
                    True: "checked one account at a time, by filter",
                    False: "cannot be checked: its member filter answers otherwise",
                }[self.member_filter],
            )
        )
        if self.members_by_user_name:
            rows.append(("group members listed by", "userName"))
        return rows


@runtime_checkable
class Learner(Protocol):
    """A writer that learns a profile: given the stored one, it reports each change through `save`."""

    def use_profile(self, profile: TargetProfile | None, save: Callable[[TargetProfile], None]) -> None: ...

    def profile(self) -> TargetProfile: ...
