"""Who may do what: named API tokens (approvers, operators, agents), which Worker fields a token's
holder sees, and the approval a sensitive grant waits for (docs/approvals.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from provisioner.engine.config.base import Strict
from provisioner.engine.config.units import parse_duration
from provisioner.engine.contracts.models import Worker

Role = Literal["operator", "approver", "agent"]

# What `sees: directory` shows of a person: what a company directory lists. Everything else of a
# Worker (personal_email, employee_number, username, location, country, custom, ...) is hidden.
DIRECTORY_FIELDS = frozenset(
    {
        "id",
        "source",
        "remote_id",
        "first_name",
        "last_name",
        "preferred_name",
        "display_name",
        "work_email",
        "title",
        "department",
        "manager_id",
        "status",
        "start_date",
        "termination_date",
        "updated_at",
    }
)
Sees = Literal["directory", "all"] | list[str]


def _approver_only() -> list[Role]:
    return ["approver"]


class ApiToken(Strict):
    """A named bearer token: its holder is a person the engine can name in the log (an approver)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$", description="who holds it, as the log names them")
    token: SecretStr = Field(description="e.g. ${ANA_TOKEN}")
    roles: list[Role] = Field(
        default_factory=_approver_only,
        min_length=1,  # none: a token every surface refuses, each saying it is another's
        description="approver: the approvals queue; operator: everything the shared api.token may do; "
        "agent: the MCP surface only (reads, and requests a person approves), never /api/v1",
    )
    sees: Sees = Field(
        default="directory",
        description="the Worker fields this token's answers show: directory (id, names, work email, title, "
        "department, manager, status, dates), all, or a list of field names; an operator sees all",
    )
    person: str | None = Field(
        default=None,
        description="the worker id of the holder (hr:42): an approver needs it (`by: manager`, no self-approval); "
        "on an agent's token, whose agent it is (they may not approve what it asks)",
    )
    groups: list[str] = Field(default_factory=list, description="approver groups, for `by: group:<name>`")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("a token needs at least 16 characters")
        return value

    @field_validator("sees")
    @classmethod
    def _known_fields(cls, value: Sees) -> Sees:
        if isinstance(value, list):
            unknown = sorted(set(value) - set(Worker.model_fields))
            if unknown:
                raise ValueError(f"sees: no Worker field {', '.join(unknown)}")
        return value

    def visible_fields(self) -> frozenset[str] | None:
        """The Worker fields this token's holder sees; None for all of them."""
        if "operator" in self.roles or self.sees == "all":
            return None
        if self.sees == "directory":
            return DIRECTORY_FIELDS
        return frozenset(self.sees) | {"id"}


class ApprovalRule(Strict):
    """A grant that waits for a person's yes: who may give it, how long the request stays open."""

    by: str = Field(description="manager | group:<name> | people:[name or worker id, ...]")
    people: list[str] = Field(default_factory=list, description="with by: people, who may approve")
    expires_after: float = Field(default=7 * 86400.0, gt=0, description="an unanswered request is denied then, e.g. 7d")
    reason_required: bool = Field(default=False, description="true: an approval or denial must say why")

    _duration = field_validator("expires_after", mode="before", json_schema_input_type=float | str)(
        lambda v: parse_duration(v)
    )

    @model_validator(mode="before")
    @classmethod
    def _people_form(cls, value: Any) -> Any:
        # `by: {people: [ana, hr:42]}` and `by: people:[ana, hr:42]` (a YAML flow list) both read as a list
        if isinstance(value, dict) and isinstance(value.get("by"), dict) and "people" in value["by"]:
            return {**value, "by": "people", "people": value["by"]["people"]}
        if isinstance(value, dict) and isinstance(value.get("by"), str) and value["by"].startswith("people:"):
            named = value["by"].removeprefix("people:").strip().strip("[]")
            return {**value, "by": "people", "people": [n.strip() for n in named.split(",") if n.strip()]}
        return value

    @model_validator(mode="after")
    def _known_form(self) -> ApprovalRule:
        if self.by == "people":
            if not self.people:
                raise ValueError("approval by people names nobody: by: people:[ana, hr:42]")
        elif self.by != "manager" and not (self.by.startswith("group:") and self.by.removeprefix("group:")):
            raise ValueError(f"approval by {self.by!r}: use manager, group:<name> or people:[...]")
        return self

    @property
    def describe(self) -> str:
        return f"people:{','.join(self.people)}" if self.by == "people" else self.by
