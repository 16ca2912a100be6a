"""What the SCIM writer learns about one app, and the checks that read it back.

The lessons (PATCH refused per resource type, the member forms that take effect, attributes the
app does not keep, how its userName filter compares, members listed by userName, whether its member
filter answers right) are held by one `Lessons` per target, which the writer's collaborators read
and update; `profile()` gathers them into a plain record the runtime stores, and `use()` starts a
process from the stored one. A changed /ServiceProviderConfig (its hash) means the app changed:
everything is learned again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from provisioner.engine.contracts.profile import AdditionForm, RemovalForm, TargetProfile
from provisioner.targets.scim_support import dropped, log, not_applied


class Lessons:
    """The learned profile of one app, kept current by whoever learns something (`learned()`)."""

    def __init__(self, target: str):
        self.target = target
        self._save: Callable[[TargetProfile], None] | None = None
        self.put_only: set[str] = set()
        self.addition: AdditionForm | None = None
        self.removal: RemovalForm | None = None
        self.not_kept: set[str] = set()
        self.case_exact_filter: bool | None = None
        self.members_by_user_name = False
        self.member_filter: bool | None = None
        self.config_hash: str | None = None
        self._reported = self.profile()

    def profile(self) -> TargetProfile:
        return TargetProfile(
            put_only=sorted(self.put_only),
            removal=self.removal,
            addition=self.addition,
            not_kept=sorted(self.not_kept),
            case_exact_filter=self.case_exact_filter,
            members_by_user_name=self.members_by_user_name,
            member_filter=self.member_filter,
            config_hash=self.config_hash,
        )

    def use(self, profile: TargetProfile | None, save: Callable[[TargetProfile], None]) -> None:
        """Start from the stored profile; every change from now on is handed to `save`."""
        self._save = save
        self._apply(profile or TargetProfile())

    def _apply(self, profile: TargetProfile) -> None:
        self.put_only = set(profile.put_only)
        self.removal, self.addition = profile.removal, profile.addition
        self.not_kept = set(profile.not_kept)
        self.case_exact_filter = profile.case_exact_filter
        self.members_by_user_name = profile.members_by_user_name
        self.member_filter = profile.member_filter
        self.config_hash = profile.config_hash
        self._reported = self.profile()

    def learned(self) -> None:
        """Hand a changed profile to whoever keeps it (the runtime's store); a failed save is logged,
        never the write's failure: the lesson is learned again next time."""
        current = self.profile()
        if self._save is None or current == self._reported:
            return
        try:
            self._save(current)
            self._reported = current
        except Exception as exc:  # the store's own errors, whatever the backend
            log.warning("target %s: could not keep what was learned about the app: %s", self.target, exc)

    def judge_config(self, announced: dict[str, Any]) -> None:
        meaningful = {k: v for k, v in announced.items() if k != "meta"}  # meta changes with every read on some apps
        digest = hashlib.sha256(json.dumps(meaningful, sort_keys=True).encode()).hexdigest()[:16]
        if self.config_hash == digest:
            return
        if self.config_hash is not None:
            log.warning("target %s announces other capabilities now: learning it again", self.target)
            self._apply(TargetProfile())
        self.config_hash = digest
        self.learned()

    def judge(self, sent: dict[str, Any], returned: dict[str, Any]) -> list[str]:
        """Learn what the app does not keep from a full resource it answered with, and say what it
        holds differently from what was sent."""
        if not returned.get("id"):
            return []  # 204 or a bare acknowledgement: nothing to judge by
        gone, kept = dropped(sent, returned)
        new = gone - self.not_kept
        before = set(self.not_kept)
        self.not_kept = (self.not_kept | gone) - kept
        if new:
            log.warning(
                "target %s does not keep %s: it answered without them (not counted as drift)",
                self.target,
                ", ".join(sorted(new)),
            )
        if self.not_kept != before:
            self.learned()
        return not_applied(sent, returned, self.not_kept)
