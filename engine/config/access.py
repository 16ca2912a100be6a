"""Who may do what: named API tokens (approvers, operators) and the approval a sensitive grant
waits for (docs/approvals.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from provisioner.engine.config.units import parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Role = Literal["operator", "approver"]


def _approver_only() -> list[Role]:
    return ["approver"]


class ApiToken(_Strict):
    """A named bearer token: its holder is a person the engine can name in the log (an approver)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$", description="who holds it, as the log names them")
    token: SecretStr = Field(description="e.g. ${ANA_TOKEN}")
    roles: list[Role] = Field(
        default_factory=_approver_only,
        description="approver: the approvals queue; operator: everything the shared api.token may do",
    )
    person: str | None = Field(
        default=None,
        description="the worker id of the holder (hr:42): an approver needs it (`by: manager`, no self-approval)",
    )
    groups: list[str] = Field(default_factory=list, description="approver groups, for `by: group:<name>`")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("a token needs at least 16 characters")
        return value


class ApprovalRule(_Strict):
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
