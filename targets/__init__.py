"""Target writers: SCIM 2.0 and declarative REST; each implements the contracts' Target protocol."""

from __future__ import annotations

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.protocols import Target
from provisioner.targets.rest import RestTarget, resolve
from provisioner.targets.scim import DEFAULT_MAPPING, ScimTarget


def build_target(config: TargetConfig) -> Target:
    if config.type == "scim":
        return ScimTarget.from_config(config)
    if config.type == "rest":
        return RestTarget.from_config(config)
    raise ValueError(f"unknown target type {config.type!r} (known: scim, rest)")


def mapping_of(config: TargetConfig) -> dict[str, str]:
    """The target's mapping: its own, else its preset's, else the type's default."""
    if config.mapping:
        return dict(config.mapping)
    if config.type == "rest":
        return dict(resolve(config)[0].mapping or {})
    return dict(DEFAULT_MAPPING)
