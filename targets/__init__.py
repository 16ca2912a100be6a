"""Target writers: SCIM 2.0 now; each implements engine.protocols.Target."""

from __future__ import annotations

from engine.config import TargetConfig
from engine.protocols import Target


def build_target(config: TargetConfig) -> Target:
    if config.type == "scim":
        from targets.scim import ScimTarget

        return ScimTarget.from_config(config)
    raise ValueError(f"unknown target type {config.type!r} (known: scim)")


def default_mapping(type_: str) -> dict[str, str]:
    if type_ == "scim":
        from targets.scim import DEFAULT_MAPPING

        return dict(DEFAULT_MAPPING)
    raise ValueError(f"unknown target type {type_!r}")
