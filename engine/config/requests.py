"""`approvals:` — who decides the requests callers make that may not act alone (an AI agent
through MCP, or anyone asking): provision a person now, retry failures, give one person access
outside the policies (docs/approvals.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from provisioner.engine.config.access import ApprovalRule


class RequestsConfig(ApprovalRule):
    """The approval every request waits for: the same rule kinds as a grant's `approval:`."""

    by: str = Field(default="manager", description="manager | group:<name> | people:[name or worker id, ...]")
    expires_after: float = Field(default=3 * 86400.0, gt=0, description="an unanswered request is denied then, e.g. 3d")
    access: bool = Field(default=True, description="false: access outside the policies cannot be requested")


class ApprovalsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: RequestsConfig = Field(default_factory=RequestsConfig, description="requests made by agents or people")
