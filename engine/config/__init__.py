"""The one YAML config file: its schema, loading it with `${ENV}` expansion, and its units."""

from provisioner.engine.config.kafka import KafkaConfig, KafkaSasl, KafkaTls
from provisioner.engine.config.keys import describe, unknown_key
from provisioner.engine.config.loader import ConfigError, Problem, SettingsCheck, load_config
from provisioner.engine.config.schema import (
    ApiConfig,
    ApiToken,
    ApprovalRule,
    Config,
    EngineConfig,
    ExpectedAccess,
    Grant,
    LifecycleConfig,
    PolicyConfig,
    PolicyTest,
    ReconcileConfig,
    RetryConfig,
    SafetyConfig,
    SourceConfig,
    StoreConfig,
    TargetConfig,
    WritebackConfig,
)
from provisioner.engine.config.units import moment_or_age, parse_duration, parse_rate, rate_window

__all__ = [
    "ApiConfig",
    "ApiToken",
    "ApprovalRule",
    "Config",
    "ConfigError",
    "EngineConfig",
    "ExpectedAccess",
    "Grant",
    "KafkaConfig",
    "KafkaSasl",
    "KafkaTls",
    "LifecycleConfig",
    "PolicyConfig",
    "PolicyTest",
    "Problem",
    "ReconcileConfig",
    "RetryConfig",
    "SafetyConfig",
    "SettingsCheck",
    "SourceConfig",
    "StoreConfig",
    "TargetConfig",
    "WritebackConfig",
    "describe",
    "load_config",
    "moment_or_age",
    "parse_duration",
    "parse_rate",
    "rate_window",
    "unknown_key",
]
