"""Duplicate groups: several groups of one displayName in one target (created by engines that did
not share group claims, or by another tool). Reported by every reconciliation; `--fix` merges the
members of each set into one group and deletes the rest."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.engine.contracts.protocols import GroupInfo, ListsGroups, Target
from provisioner.engine.store import Store
from provisioner.reconcile.listing import failed


@dataclass(frozen=True)
class DuplicateGroups:
    target: str
    name: str
    groups: tuple[GroupInfo, ...]  # the one kept first: the most members, then the lowest id

    def as_dict(self) -> dict[str, object]:
        return {"target": self.target, "name": self.name, "ids": [g.id for g in self.groups]}


async def find_duplicates(name: str, target: Target) -> list[DuplicateGroups]:
    if not isinstance(target, ListsGroups):
        return []
    by_name: dict[str, list[GroupInfo]] = {}
    for group in await target.list_groups():
        by_name.setdefault(group.name, []).append(group)
    return [
        DuplicateGroups(name, group_name, tuple(sorted(groups, key=lambda g: (-len(g.members), g.id))))
        for group_name, groups in sorted(by_name.items())
        if len(groups) > 1
    ]


async def merge_duplicates(store: Store, targets: dict[str, Target], found: list[DuplicateGroups]) -> list[str]:
    """Merge each set into its first group; returns a note per set for the person running it."""
    notes: list[str] = []
    for duplicate in found:
        target = targets[duplicate.target]
        assert isinstance(target, ListsGroups)
        if duplicate.name in target.unread_groups():  # its members unknown: which to keep is unknown too
            notes.append(
                f"{duplicate.target}: duplicate groups {duplicate.name!r} not merged: one is too large to read "
                "(max_response_bytes)"
            )
            continue
        keep, *others = duplicate.groups
        try:
            await target.merge_groups(keep.id, [g.id for g in others])
        except Exception as exc:  # the app's answer: said in the notes, the other sets still merged
            notes.append(f"{duplicate.target}: duplicate groups {duplicate.name!r} not merged: {failed(exc)}")
            continue
        # The engines' shared claim may name a group just deleted: the next use looks again.
        store.claims.forget_target(duplicate.target, "group", duplicate.name)
        members = len({m for g in duplicate.groups for m in g.members})
        notes.append(
            f"{duplicate.target}: merged {len(others)} duplicate groups {duplicate.name!r} into {keep.id} "
            f"({members} members)"
        )
    return notes
