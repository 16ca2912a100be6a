# mypy: disable-error-code="empty-body"
"""What the SCIM writer learns about one app, and the checks that read it back.

The lessons (PATCH refused per resource type, the member forms that take effect, attributes the
app does not keep, how its userName filter compares, members listed by userName) live in the
writer's own attributes; `profile()` gathers them into a plain record the runtime stores, and
`use_profile()` starts a process from the stored one. A changed /ServiceProviderConfig (its hash)
means the app changed: everything is learned again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from provisioner.engine.contracts.profile import AdditionForm, RemovalForm, TargetProfile
from provisioner.targets.scim_support import dropped, log, not_applied


class ScimLearning:
    """Mixed into ScimTarget; the attributes below are its own."""

    name: str
    _put_only: set[str]
    _addition: AdditionForm | None
    _removal: RemovalForm | None
    _not_kept: set[str]
    _case_exact_filter: bool | None
    _members_by_user_name: bool
    _config_hash: str | None
    _save: Callable[[TargetProfile], None] | None
    _reported: TargetProfile | None

    def profile(self) -> TargetProfile:
        return TargetProfile(
            put_only=sorted(self._put_only),
            removal=self._removal,
            addition=self._addition,
            not_kept=sorted(self._not_kept),
            case_exact_filter=self._case_exact_filter,
            members_by_user_name=self._members_by_user_name,
            config_hash=self._config_hash,
        )

    def use_profile(self, profile: TargetProfile | None, save: Callable[[TargetProfile], None]) -> None:
        self._save = save
        self._apply(profile or TargetProfile())

    def _apply(self, profile: TargetProfile) -> None:
        self._put_only = set(profile.put_only)
        self._removal, self._addition = profile.removal, profile.addition
        self._not_kept = set(profile.not_kept)
        self._case_exact_filter = profile.case_exact_filter
        self._members_by_user_name = profile.members_by_user_name
        self._config_hash = profile.config_hash
        self._reported = self.profile()

    def _learned(self) -> None:
        """Hand a changed profile to whoever keeps it (the runtime's store); a failed save is logged,
        never the write's failure: the lesson is learned again next time."""
        current = self.profile()
        if self._save is None or current == self._reported:
            return
        try:
            self._save(current)
            self._reported = current
        except Exception as exc:  # the store's own errors, whatever the backend
            log.warning("target %s: could not keep what was learned about the app: %s", self.name, exc)

    def _judge_config(self, announced: dict[str, Any]) -> None:
        meaningful = {k: v for k, v in announced.items() if k != "meta"}  # meta changes with every read on some apps
        digest = hashlib.sha256(json.dumps(meaningful, sort_keys=True).encode()).hexdigest()[:16]
        if self._config_hash == digest:
            return
        if self._config_hash is not None:
            log.warning("target %s announces other capabilities now: learning it again", self.name)
            self._apply(TargetProfile())
        self._config_hash = digest
        self._learned()

    def not_kept(self) -> set[str]:
        """Mapped attributes this app answered without after we wrote them: it does not store them."""
        return set(self._not_kept)

    def _judge(self, sent: dict[str, Any], returned: dict[str, Any]) -> list[str]:
        """Learn what the app does not keep from a full resource it answered with, and say what it
        holds differently from what was sent."""
        if not returned.get("id"):
            return []  # 204 or a bare acknowledgement: nothing to judge by
        gone, kept = dropped(sent, returned)
        new = gone - self._not_kept
        before = set(self._not_kept)
        self._not_kept = (self._not_kept | gone) - kept
        if new:
            log.warning(
                "target %s does not keep %s: it answered without them (not counted as drift)",
                self.name,
                ", ".join(sorted(new)),
            )
        if self._not_kept != before:
            self._learned()
        return not_applied(sent, returned, self._not_kept)
