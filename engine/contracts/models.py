"""The core contracts: the normalized Worker, the Action a plan is made of, and a writer's Result.

One definition each; sources, rules, targets and the reconciler import them from here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scalar = str | int | float | bool | None


class EmploymentType(StrEnum):
    full_time = "full_time"
    part_time = "part_time"
    contractor = "contractor"
    intern = "intern"
    temporary = "temporary"
    other = "other"


class WorkerStatus(StrEnum):
    pending = "pending"
    active = "active"
    on_leave = "on_leave"
    terminated = "terminated"


# updated_at moves whenever the source touches a record, even without a real change,
# so it takes no part in change detection.
_VOLATILE_FIELDS = frozenset({"updated_at"})
_REQUIRED = frozenset({"id", "source", "remote_id"})
# The fields a string is parsed into something else for (enums, dates, the custom dict); a test
# checks the list against the model.
_PARSED = ("employment_type", "status", "start_date", "termination_date", "custom", "updated_at")
_FIELDS_SET: dict[frozenset[str], set[str]] = {}  # a handful of entries: one per shape of record


def share_fields_set(model: BaseModel) -> None:
    """Models of one shape (the workers read from one source, the events of one poll) set the same
    fields: a frozen model shares one set of their names instead of ~700 bytes each (70 MB per
    100,000 workers, as much again for their events)."""
    names = model.__pydantic_fields_set__
    object.__setattr__(model, "__pydantic_fields_set__", _FIELDS_SET.setdefault(frozenset(names), names))


class Worker(BaseModel):
    """A person as every source describes them, whatever the vendor."""

    # Sources send "" or whitespace for unknown values; the contract says None. pydantic-core
    # strips every string field, and `_checked` turns what is left empty into None; values parsed
    # as something else (dates, enums) are trimmed by `_parsed_blanks` before they are parsed.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str
    source: str
    remote_id: str
    employee_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    preferred_name: str | None = None
    display_name: str | None = None
    work_email: str | None = None
    personal_email: str | None = None
    username: str | None = None
    title: str | None = None
    department: str | None = None
    division: str | None = None
    team: str | None = None
    cost_center: str | None = None
    location: str | None = None
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2")
    timezone: str | None = Field(default=None, description="IANA time zone")
    manager_id: str | None = None
    employment_type: EmploymentType | None = None
    status: WorkerStatus = WorkerStatus.active
    start_date: date | None = None
    termination_date: date | None = None
    custom: dict[str, Scalar] = Field(default_factory=dict)
    updated_at: datetime | None = None

    # Per field, not on the whole model: a model-level "before" validator makes pydantic-core build
    # a dict from JSON first, and reading an event or a snapshot then cost twice as much.
    @field_validator(*_PARSED, mode="before")
    @classmethod
    def _parsed_blanks(cls, value: Any) -> Any:
        if isinstance(value, str) and (not value or value[0].isspace() or value[-1].isspace()):
            return value.strip() or None
        return value

    @field_validator("custom")
    @classmethod
    def _sorted(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        """Keys in one order, whatever order the vendor sent them in: the content hash reads them
        in order, and a reordering is no change."""
        return dict(sorted(value.items())) if len(value) > 1 else value

    @field_validator("country")
    @classmethod
    def _alpha2(cls, value: str | None) -> str | None:
        if not value:  # blank: `_checked` makes it None once every field is validated
            return value
        if len(value) != 2 or not value.isalpha():
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code, got {value!r}")
        return value.upper()

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str | None) -> str | None:
        if not value:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone must be an IANA name, got {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _checked(self) -> Worker:
        share_fields_set(self)
        fields = self.__dict__
        if "" in fields.values():  # one scan in C; a blank field is rare
            for name, value in list(fields.items()):
                if value == "":
                    if name in _REQUIRED:
                        raise ValueError(f"{name} must not be blank")
                    fields[name] = None
        if self.id != worker_id(self.source, self.remote_id):
            raise ValueError(f"id must be '<source>:<remote_id>', got {self.id!r}")
        return self

    def content_hash(self) -> str:
        """A digest of everything that counts as a change: the JSON of the fields but the volatile
        ones, in field order (and `custom` in key order), serialized by pydantic-core. Computed
        once: a poll needs it to diff, to name the event and to store the snapshot."""
        # Kept in the instance's private slot without declaring a private attribute: a declared one
        # costs every Worker built (100,000 per poll) an initialisation, and its access a __getattr__.
        cached = self.__pydantic_private__
        if cached is None:
            data = self.__pydantic_serializer__.to_json(self, exclude=set(_VOLATILE_FIELDS))
            cached = {"digest": hashlib.sha256(data).hexdigest()}
            object.__setattr__(self, "__pydantic_private__", cached)
        return str(cached["digest"])

    def __eq__(self, other: object) -> bool:
        """Equal fields make equal workers, whether or not either has its digest computed yet."""
        if not isinstance(other, Worker):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # as before: `custom` is a dict, so fields cannot be hashed

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Worker:
        """A copy with changes has content of its own: the digest is not carried over."""
        copy = super().model_copy(update=update, deep=deep)
        object.__setattr__(copy, "__pydantic_private__", None)
        return copy

    def comparable(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude=set(_VOLATILE_FIELDS))

    @property
    def in_employment(self) -> bool:
        return self.status is not WorkerStatus.terminated


def worker_id(source: str, remote_id: str) -> str:
    return f"{source}:{remote_id}"


def changed_fields(previous: Worker | None, current: Worker) -> dict[str, Any]:
    """Field name → previous value, for every field whose value differs."""
    before = previous.comparable() if previous else {}
    after = current.comparable()
    return {k: before.get(k) for k in after if before.get(k) != after[k]}


class ActionKind(StrEnum):
    create = "create"
    update = "update"
    enable = "enable"
    disable = "disable"
    delete = "delete"
    add_groups = "add_groups"
    remove_groups = "remove_groups"
    noop = "noop"
    # A grant that waits for a person's approval: no writer runs it; the store keeps the request.
    pending_approval = "pending_approval"


DEPROVISIONING = frozenset({ActionKind.disable, ActionKind.delete})
# What takes access away: it runs first and is never skipped because another action failed.
REVOCATIONS = frozenset({*DEPROVISIONING, ActionKind.remove_groups})


class Action(BaseModel):
    """One step a target must take for one worker, with the reason a person can read."""

    worker_id: str
    target: str
    action: ActionKind
    attributes: dict[str, Any] = Field(default_factory=dict)
    groups: list[str] = Field(default_factory=list)
    reason: str
    policy: str | None = None
    effective_at: datetime | None = None


class ResultStatus(StrEnum):
    success = "success"
    failure = "failure"
    skipped = "skipped"


class Account(BaseModel):
    """An account as a target holds it; `attributes` uses the same flat paths as the mapping."""

    id: str
    active: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)
    groups: list[str] = Field(default_factory=list)


def elapsed_ms(start: float) -> float:
    """Milliseconds since a `time.perf_counter()` reading, as writers report them in a Result."""
    return round((time.perf_counter() - start) * 1000, 2)


class Outcome(StrEnum):
    """What a writer's call came to where the status alone does not say it; callers branch on
    this, never on the error's wording."""

    conflict = "conflict"  # a create refused because the app already has the account: adopt it
    not_applied = "not_applied"  # the app answered success, and its answer shows the write did not happen


# The error a conflict's Result carries for people; code reads `Outcome.conflict`.
CONFLICT = "conflict"


class Result(BaseModel):
    status: ResultStatus
    outcome: Outcome | None = None
    account_id: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float = 0.0
    error: str | None = None
    adopted: bool = False
    # A failure worth trying again later (429, 5xx, timeout, refused connection); others are final.
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not ResultStatus.failure
