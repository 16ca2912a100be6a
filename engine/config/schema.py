"""The one YAML config file: loading, `${ENV}` expansion, validation with file:line errors."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from provisioner.engine.kit.templating import Condition, Template, TemplateError

# ${NAME} or ${NAME:-default}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_rate(value: str | int | float) -> float:
    """'20/s', '600/m', '10/10s' or a number per second → requests per second."""
    if isinstance(value, int | float):
        return float(value)
    count, _, per = value.partition("/")
    try:
        rate = float(count) / parse_duration(per if per and per[0].isdigit() else f"1{per or 's'}")
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a rate: {value!r} (use e.g. 20/s, 600/m, 10/10s)") from None
    if rate <= 0:
        raise ValueError(f"a rate limit must be positive, got {value!r}")
    return rate


def rate_window(value: Any) -> float | None:
    """'10/10s' → 10.0: the window a rate names explicitly (a vendor metering a rolling window), or
    None for '20/s' and plain numbers."""
    if isinstance(value, str) and "/" in value:
        per = value.partition("/")[2].strip()
        return parse_duration(per) if per and per[0].isdigit() else None
    return None


def parse_duration(value: str | int | float) -> float:
    """'90s', '15m', '1h', or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Strict):
    url: str = "sqlite:///./provisioner.db"


class KafkaConfig(_Strict):
    bootstrap_servers: str | None = None
    topic_prefix: str = "provisioner"
    partitions: int = Field(default=6, ge=1)


class EngineConfig(_Strict):
    # Workers mostly wait on targets, so many can be in flight; each target caps its own requests.
    concurrency: int = Field(default=64, ge=1, le=1024, description="workers applied at once")
    batch_size: int = Field(default=500, ge=1)
    deferred_interval: float = Field(default=30.0, gt=0, description="how often due deferred actions are fired")
    # `provisioner run` serves /webhooks/{source} and /healthz here when a source has a webhook_secret
    listen: str = Field(default="127.0.0.1:8088", pattern=r"^[^:\s]*:\d{1,5}$", description="host:port")

    _duration = field_validator("deferred_interval", mode="before")(lambda v: parse_duration(v))


ReconcileAction = Literal["fix", "report", "disable", "delete"]


class ReconcileConfig(_Strict):
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

    _duration = field_validator("poll_interval", mode="before")(lambda v: parse_duration(v))

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TargetConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    type: Literal["scim", "rest"]
    base_url: str = ""  # a REST preset may bring it
    token: SecretStr | None = None
    on_terminate: Literal["disable", "delete"] = "disable"
    on_leave: Literal["keep", "disable"] = "keep"
    deprovision_out_of_scope: bool = Field(
        default=True, description="false: accounts of workers who merely leave scope are left alone"
    )
    mapping: dict[str, str] | None = None
    timeout: float = 30.0
    max_attempts: int = Field(default=5, ge=1)
    concurrency: int = Field(default=8, ge=1, description="HTTP requests in flight to this target")
    rate_limit: float | None = Field(default=None, description="requests per second, e.g. 20/s or 600/m")
    burst: int | None = Field(default=None, ge=1, description="requests allowed at once above the rate")

    _rate = field_validator("rate_limit", mode="before")(lambda v: None if v is None else parse_rate(v))

    @model_validator(mode="after")
    def _needs_a_url(self) -> TargetConfig:
        if not self.base_url and not (self.model_extra or {}).get("preset"):
            raise ValueError(f"target {self.name!r} needs a base_url")
        return self

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Grant(_Strict):
    target: str
    groups: list[str] = Field(default_factory=list)


class PolicyConfig(_Strict):
    name: str
    description: str | None = None
    when: str = "true"
    grant: list[Grant] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list, description="targets this policy forbids; deny beats grant")


class LifecycleConfig(_Strict):
    prehire_days: int = Field(default=7, ge=0, description="pending workers get accounts this many days early")
    prehire_state: Literal["disabled", "enabled"] = "disabled"
    terminate_at: Literal["immediate", "end_of_day"] = "immediate"
    grace_days: int = Field(default=0, ge=0, description="extra days after termination before deprovisioning")


class SafetyConfig(_Strict):
    max_deprovisions: int | None = Field(default=25, ge=0, description="per poll and source")
    max_deprovision_ratio: float | None = Field(default=0.10, ge=0, le=1, description="of the source's workers")


class PolicyTest(_Strict):
    name: str
    worker: dict[str, Any]
    now: datetime | None = None
    expect: dict[str, ExpectedAccess]


class ExpectedAccess(_Strict):
    in_scope: bool
    groups: list[str] | None = None


class Config(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    targets: list[TargetConfig] = Field(default_factory=list)
    policies: list[PolicyConfig] = Field(default_factory=list)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    tests: list[PolicyTest] = Field(default_factory=list)

    def target(self, name: str) -> TargetConfig:
        return next(t for t in self.targets if t.name == name)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """Every problem in a config file at once, each with file, line and key."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _LineLoader(yaml.SafeLoader):
    """Records the line of every key so errors can point at it."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return _Located(mapping, lines, node.start_mark.line + 1)


class _Located(dict):
    """A dict that remembers where its keys stood in the file."""

    def __init__(self, data: dict[str, Any], lines: dict[str, int], line: int):
        super().__init__(data)
        self.lines = lines
        self.line = line


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, _Located) and str(part) in node.lines:
            line = node.lines[str(part)]
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            line = getattr(node, "line", line)
        else:
            break
    return line


def _expand_env(node: Any, path: tuple[Any, ...], missing: list[tuple[tuple[Any, ...], str]]) -> Any:
    if isinstance(node, dict):
        for key in list(node):
            node[key] = _expand_env(node[key], (*path, key), missing)
        return node
    if isinstance(node, list):
        return [_expand_env(v, (*path, i), missing) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name not in os.environ and default is not None:
                return default
            if name not in os.environ:
                missing.append((path, name))
                return ""
            return os.environ[name]

        return _ENV_REF.sub(sub, node)
    return node


def _key(loc: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def load_config(path: str | Path) -> Config:
    """Read, expand and validate; raises ConfigError listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    try:
        data = yaml.load(text, Loader=_LineLoader) or _Located({}, {}, 1)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError([Problem(file, mark.line + 1 if mark else None, "", f"invalid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "", "the top level must be a mapping")])
    missing: list[tuple[tuple[Any, ...], str]] = []
    _expand_env(data, (), missing)
    problems = [
        Problem(file, _line_of(data, loc), _key(loc), f"environment variable {name} is not set")
        for loc, name in missing
    ]
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(Problem(file, _line_of(data, loc), _key(loc), err["msg"]))
    problems.extend(_cross_check(data, file))
    problems.sort(key=lambda p: p.line or 0)
    if problems:
        raise ConfigError(problems)
    assert config is not None
    return config


def _items(data: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    value = data.get(key) if isinstance(data, dict) else None
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def _cross_check(data: Any, file: str) -> list[Problem]:
    """What the schema cannot say: unique names, references to real targets, expressions that compile.

    Works on the raw data, so these problems are reported together with the schema's own."""
    problems = []

    def problem(loc: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(file, _line_of(data, loc), _key(loc), message))

    def compiles(loc: tuple[Any, ...], source: Any, kind: type[Template] | type[Condition], owner: str) -> None:
        if isinstance(source, str):
            try:
                kind(source)
            except TemplateError as exc:
                problem(loc, f"{owner}: {exc}")

    for kind in ("sources", "targets", "policies"):
        seen: set[str] = set()
        for i, item in _items(data, kind):
            if item.get("name") in seen:
                problem((kind, i, "name"), f"duplicate name {item['name']!r}")
            seen.add(item.get("name"))
    targets = {str(t.get("name")) for _, t in _items(data, "targets")}
    known = ", ".join(sorted(targets)) or "none"
    for i, policy in _items(data, "policies"):
        owner = f"policy {policy.get('name')!r}"
        compiles(("policies", i, "when"), policy.get("when"), Condition, owner)
        for j, grant in _items(policy, "grant"):
            if "target" in grant and grant["target"] not in targets:
                problem(("policies", i, "grant", j, "target"), f"unknown target {grant['target']!r} (known: {known})")
            for k, group in enumerate(grant.get("groups") or []):
                compiles(("policies", i, "grant", j, "groups", k), group, Template, owner)
        for j, denied in enumerate(policy.get("deny") or []):
            if denied not in targets:
                problem(("policies", i, "deny", j), f"unknown target {denied!r} (known: {known})")
    from provisioner.sources import settings_problems  # each connector knows its own keys

    for i, source in _items(data, "sources"):
        for loc, message in settings_problems(source, set(SourceConfig.model_fields)):
            problem(("sources", i, *loc), f"source {source.get('name')!r}: {message}")
    for i, target in _items(data, "targets"):
        mapping = target.get("mapping")
        for path, source in mapping.items() if isinstance(mapping, dict) else []:
            compiles(("targets", i, "mapping", path), source, Template, f"target {target.get('name')!r}")
    for i, test in _items(data, "tests"):
        expect = test.get("expect")
        for name in expect if isinstance(expect, dict) else {}:
            if name not in targets:
                problem(("tests", i, "expect", name), f"unknown target {name!r} (known: {known})")
    return problems
