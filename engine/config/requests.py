"""`approvals:` — who decides the requests callers make that may not act alone (an AI agent
through MCP, or anyone asking): provision a person now, retry failures, give one person access
outside the policies (docs/approvals.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from provisioner.engine.config.access import ApprovalRule
from provisioner.engine.config.units import parse_duration


class RequestsConfig(ApprovalRule):
    """The approval every request waits for: the same rule kinds as a grant's `approval:`."""

    by: str = Field(default="manager", description="manager | group:<name> | people:[name or worker id, ...]")
    expires_after: float = Field(default=3 * 86400.0, gt=0, description="an unanswered request is denied then, e.g. 3d")
    access: bool = Field(default=True, description="false: access outside the policies cannot be requested")
    access_for: float | None = Field(
        default=None, gt=0, description="approved access ends this long after the approval, e.g. 90d; none: it lasts"
    )

    _access_for = field_validator("access_for", mode="before", json_schema_input_type=float | str | None)(
        lambda v: None if v is None else parse_duration(v)
    )


class ApprovalsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: RequestsConfig = Field(default_factory=RequestsConfig, description="requests made by agents or people")
