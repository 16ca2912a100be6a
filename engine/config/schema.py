"""The config file's schema: one pydantic model per block (the larger blocks in modules of their own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, SecretStr, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from provisioner.engine.config.access import ApiToken, ApprovalRule
from provisioner.engine.config.base import Strict
from provisioner.engine.config.identity import IdentityConfig
from provisioner.engine.config.kafka import KafkaConfig
from provisioner.engine.config.requests import ApprovalsConfig
from provisioner.engine.config.telemetry import TelemetryConfig
from provisioner.engine.config.units import parse_duration, parse_rate
from provisioner.engine.config.writeback import WritebackConfig
from provisioner.engine.kit.limits import DEFAULT_MAX_RESPONSE

# A duration or rate as YAML writes it: seconds, or '90s', '15m', '10/10s'.
DURATION = float | str


class StoreConfig(Strict):
    url: str = "sqlite:///./provisioner.db"


class EngineConfig(Strict):
    # Workers mostly wait on targets, so many can be in flight; each target caps its own requests.
    concurrency: int = Field(default=64, ge=1, le=1024, description="workers applied at once")
    batch_size: int = Field(
        default=2000, ge=1, description="events fetched from Kafka at most at once; twice this many are in flight"
    )
    deferred_interval: float = Field(default=30.0, gt=0, description="how often due deferred actions are fired")
    # Scale-out (several engines on one store and one Kafka consumer group).
    stall_seconds: float = Field(
        default=300.0, gt=0, description="/readyz fails when the engine has work but recorded nothing for this long"
    )
    claim_seconds: float = Field(
        default=30.0, ge=3, description="an event claim lapses this long after its engine stops renewing it"
    )
    revoke_wait: float = Field(
        default=10.0, ge=0, description="on a rebalance, how long in-flight events of lost partitions may finish"
    )
    # `provisioner run` and `provisioner serve` answer here: health, metrics, API, console, webhooks
    listen: str = Field(default="127.0.0.1:8088", pattern=r"^[^:\s]*:\d{1,5}$", description="host:port")

    _duration = field_validator(
        "deferred_interval",
        "stall_seconds",
        "claim_seconds",
        "revoke_wait",
        mode="before",
        json_schema_input_type=DURATION,
    )(lambda v: parse_duration(v))


class ApiConfig(Strict):
    token: SecretStr | None = Field(default=None, description="bearer token for /api/v1 and the console login")
    tokens: list[ApiToken] = Field(default_factory=list, description="named tokens (approvers); see docs/approvals.md")
    metrics_auth: bool = Field(default=False, description="true: /metrics also needs the bearer token")

    @model_validator(mode="after")
    def _distinct(self) -> ApiConfig:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError(
                f"api.tokens: a name is used twice ({', '.join(sorted(n for n in set(names) if names.count(n) > 1))})"
            )
        secrets = [t.token.get_secret_value() for t in self.tokens]
        if self.token is not None:
            secrets.append(self.token.get_secret_value())
        if len(set(secrets)) != len(secrets):
            raise ValueError("api.tokens: two tokens are the same secret; each holder needs their own")
        return self


class RetryConfig(Strict):
    """Durable retries of failed writes, per worker × target: exponential backoff with jitter."""

    attempts: int = Field(default=8, ge=1, description="failed attempts before the item is dead-lettered")
    initial: float = Field(default=60.0, gt=0, description="the first delay, e.g. 1m")
    max: float = Field(default=6 * 3600.0, gt=0, description="the cap on any delay, e.g. 6h")

    _duration = field_validator("initial", "max", mode="before", json_schema_input_type=DURATION)(
        lambda v: parse_duration(v)
    )

    def delay(self, attempts: int, jitter: float) -> float:
        """Seconds before the next try after `attempts` failures; `jitter` in [0, 1] spreads a
        storm's retries over the second half of the step instead of firing them together."""
        step = min(self.max, self.initial * 2 ** max(0, attempts - 1))
        return step / 2 + step / 2 * jitter


ReconcileAction = Literal["fix", "report", "disable", "delete"]


class ReconcileConfig(Strict):
    schedule: str | None = Field(default=None, description="an interval (6h) or a crontab line (0 3 * * *)")
    fix: bool = Field(default=True, description="false: scheduled runs only report")
    # per situation: fix (drifted, missing, unlinked, should_be_disabled), report (orphaned, ambiguous),
    # or for orphaned accounts disable / delete
    actions: dict[
        Literal["drifted", "missing", "unlinked", "should_be_disabled", "orphaned", "ambiguous"], ReconcileAction
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sensible(self) -> ReconcileConfig:
        for situation, action in self.actions.items():
            if action in ("disable", "delete") and situation != "orphaned":
                raise ValueError(f"{situation}: {action} applies to orphaned accounts only (use fix or report)")
            if action == "fix" and situation in ("orphaned", "ambiguous"):
                raise ValueError(f"{situation}: nothing to fix it towards (use report, or disable/delete for orphaned)")
        return self


class SourceConfig(BaseModel):
    """Common keys; each connector validates its own extra keys."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    type: str
    poll_interval: float = 900.0
    # ATS → HRIS hand-over: a new worker here who matches a pending pre-hire of another source on
    # these keys (first match wins, in this order) takes over that pre-hire's accounts.
    correlate: list[Literal["personal_email", "work_email", "employee_number", "username"]] = Field(
        default_factory=list
    )

    _duration = field_validator("poll_interval", mode="before", json_schema_input_type=DURATION)(
        lambda v: parse_duration(v)
    )

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Leaving(Strict):
    """What happens to an account when its person leaves (or leaves scope): `disable` or `delete`, and
    whether a disabled account keeps the groups the engine manages. `on_terminate: disable` is short
    for `{action: disable, remove_groups: true}`."""

    action: Literal["disable", "delete"] = "disable"
    remove_groups: bool = Field(
        default=True,
        description="true (the default): a disabled account leaves the groups the engine manages; false: it keeps them",
    )

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"action": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The short form is valid YAML too: an editor must not flag `on_terminate: disable`.
        return {"anyOf": [{"type": "string", "enum": ["disable", "delete"]}, handler(core)]}


class TargetConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    type: Literal["scim", "rest"]
    base_url: str = ""  # a REST preset may bring it
    token: SecretStr | None = None
    on_terminate: Leaving = Field(default_factory=Leaving, description="when a worker leaves the company")
    on_out_of_scope: Leaving | None = Field(
        default=None, description="when a worker leaves this target's scope but not the company; default: on_terminate"
    )
    on_leave: Literal["keep", "disable"] = "keep"
    approval: ApprovalRule | None = Field(default=None, description="every grant to this app waits for approval")
    deprovision_out_of_scope: bool = Field(
        default=True, description="false: accounts of workers who merely leave scope are left alone"
    )
    mapping: dict[str, str] | None = None
    manage_groups: Literal["granted", "all"] | list[str] = Field(
        default="granted",
        description="groups the engine owns (membership no policy grants is drift): granted (every group a "
        "policy can grant here), all, or a list of names (* and ? globs)",
    )
    timeout: float = 30.0
    max_attempts: int = Field(default=5, ge=1)
    concurrency: int = Field(default=8, ge=1, description="HTTP requests in flight to this target at most")
    adaptive_concurrency: bool = Field(
        default=True,
        description="find how many requests the app takes at once (AIMD on latency and 429/503), up to concurrency",
    )
    rate_limit: float | None = Field(default=None, description="requests per second, e.g. 20/s or 600/m")
    burst: int | None = Field(default=None, ge=1, description="requests allowed at once above the rate")
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE, ge=1024, description="an answer from this app over this size is refused"
    )

    _rate = field_validator("rate_limit", mode="before", json_schema_input_type=DURATION | None)(
        lambda v: None if v is None else parse_rate(v)
    )

    @model_validator(mode="after")
    def _needs_a_url(self) -> TargetConfig:
        if not self.base_url and not (self.model_extra or {}).get("preset"):
            raise ValueError(f"target {self.name!r} needs a base_url")
        return self

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Grant(Strict):
    target: str
    groups: list[str] = Field(default_factory=list)
    approval: ApprovalRule | None = Field(default=None, description="this grant waits for a person's approval")


class PolicyConfig(Strict):
    name: str
    description: str | None = None
    when: str = "true"
    grant: list[Grant] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list, description="targets this policy forbids; deny beats grant")


class LifecycleConfig(Strict):
    prehire_days: int = Field(default=7, ge=0, description="pending workers get accounts this many days early")
    prehire_state: Literal["disabled", "enabled"] = "disabled"
    terminate_at: Literal["immediate", "end_of_day"] = "immediate"
    grace_days: int = Field(default=0, ge=0, description="extra days after termination before deprovisioning")


class SafetyConfig(Strict):
    max_deprovisions: int | None = Field(default=25, ge=0, description="per poll and source")
    max_deprovision_ratio: float | None = Field(default=0.10, ge=0, le=1, description="of the source's workers")


class PolicyTest(Strict):
    name: str
    worker: dict[str, Any]
    now: datetime | None = None
    expect: dict[str, ExpectedAccess]


class ExpectedAccess(Strict):
    in_scope: bool
    groups: list[str] | None = None


class Config(Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    targets: list[TargetConfig] = Field(default_factory=list)
    policies: list[PolicyConfig] = Field(default_factory=list)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    writeback: list[WritebackConfig] = Field(default_factory=list)
    identity: IdentityConfig | None = Field(default=None, description="join records of one person (docs/identity.md)")
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    tests: list[PolicyTest] = Field(default_factory=list)

    def target(self, name: str) -> TargetConfig:
        return next(t for t in self.targets if t.name == name)
