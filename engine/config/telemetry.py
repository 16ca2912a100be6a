"""The `telemetry:` block: OpenTelemetry traces. Export is off until an OTLP endpoint is named; trace
ids exist either way, so log lines and the provisioning log can be matched to one change."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TelemetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); unset: nothing is exported",
    )
    service_name: str = Field(default="provisioner", min_length=1, description="service.name of the spans")
    sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of changes (new traces) whose spans are exported"
    )
