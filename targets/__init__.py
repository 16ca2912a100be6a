"""Target writers: SCIM 2.0 and declarative REST; each implements engine.protocols.Target."""

from __future__ import annotations

from provisioner.engine.config.schema import TargetConfig
from provisioner.engine.contracts.protocols import Target


def build_target(config: TargetConfig) -> Target:
    if config.type == "scim":
        from provisioner.targets.scim import ScimTarget

        return ScimTarget.from_config(config)
    if config.type == "rest":
        from provisioner.targets.rest import RestTarget

        return RestTarget.from_config(config)
    raise ValueError(f"unknown target type {config.type!r} (known: scim, rest)")


def mapping_of(config: TargetConfig) -> dict[str, str]:
    """The target's mapping: its own, else its preset's, else the type's default."""
    if config.mapping:
        return dict(config.mapping)
    if config.type == "rest":
        from provisioner.targets.rest import resolve

        return dict(resolve(config)[0].mapping or {})
    from provisioner.targets.scim import DEFAULT_MAPPING

    return dict(DEFAULT_MAPPING)
