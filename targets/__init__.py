"""Target writers: SCIM 2.0 and declarative REST; each implements the contracts' Target protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from provisioner.engine.config import TargetConfig, describe
from provisioner.engine.contracts.protocols import Target
from provisioner.targets.rest import RestSettings, RestTarget, resolve
from provisioner.targets.scim import DEFAULT_MAPPING, ScimTarget
from provisioner.targets.scim_support import ScimSettings

_SETTINGS: dict[str, type[BaseModel]] = {"scim": ScimSettings, "rest": RestSettings}


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


def settings_problems(item: Mapping[str, Any], common_keys: set[str]) -> list[tuple[tuple[Any, ...], str]]:
    """Problems with one target entry's own settings (beyond the common keys), for `validate`."""
    model = _SETTINGS.get(str(item.get("type")))
    if model is None:
        return []  # the schema already says the type is unknown
    try:
        model.model_validate({k: v for k, v in item.items() if k not in common_keys})
    except ValidationError as exc:
        return describe(model, exc.errors(), common_keys)
    return []
