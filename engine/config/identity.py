"""The `identity:` block: one person across records and sources."""

from __future__ import annotations

from pydantic import Field, field_validator

from provisioner.engine.config.base import Strict


class IdentityConfig(Strict):
    """One person across records and sources (docs/identity.md): how records are joined, and which
    source's value a joined person's field takes."""

    match: list[str] = Field(
        default_factory=lambda: ["work_email"],
        description="Worker fields (or custom.<name>) a new record is joined on; the first that finds someone decides",
    )
    precedence: list[str] = Field(
        default_factory=list,
        description="source names, strongest first; unnamed sources follow, HRIS before ATS",
    )
    fields: dict[str, list[str]] = Field(
        default_factory=dict, description="per Worker field, its own source order (else `precedence`)"
    )
    bridge_days: int = Field(
        default=7,
        ge=0,
        description="a record pending to start within this many days keeps the person active when another ends",
    )

    @field_validator("match")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.startswith("custom.") and name not in _MATCHABLE:
                known = ", ".join(sorted(_MATCHABLE))
                raise ValueError(f"identity.match: {name!r} cannot identify a person (use {known} or custom.<name>)")
        return value


# Fields that may identify a person: not its lifecycle, nor what many people share.
_MATCHABLE = frozenset({"work_email", "personal_email", "employee_number", "username"})
