"""Target writers: SCIM 2.0 and declarative REST; each implements the contracts' Target protocol.

A writer's module is imported when a config first names its type, not when the engine starts: the
SCIM writer's protocol models (scim2-models) alone cost a third of a second to import, which a
command that writes to no SCIM app should not pay.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from provisioner.engine.config import TargetConfig, describe
from provisioner.engine.contracts.protocols import Target

# type: → (module, writer class, settings model) below this package
_WRITERS = {"scim": ("scim", "ScimTarget", "ScimSettings"), "rest": ("rest", "RestTarget", "RestSettings")}


def _member(type_: str, index: int) -> Any:
    if type_ not in _WRITERS:
        raise ValueError(f"unknown target type {type_!r} (known: {', '.join(_WRITERS)})")
    module, *names = _WRITERS[type_]
    return getattr(importlib.import_module(f"{__name__}.{module}"), names[index])


def build_target(config: TargetConfig) -> Target:
    target: Target = _member(config.type, 0).from_config(config)
    return target


def mapping_of(config: TargetConfig) -> dict[str, str]:
    """The target's mapping: its own, else its preset's, else the type's default."""
    if config.mapping:
        return dict(config.mapping)
    return dict(_member(config.type, 0).default_mapping(config))


def settings_problems(item: Mapping[str, Any], common_keys: set[str]) -> list[tuple[tuple[Any, ...], str]]:
    """Problems with one target entry's own settings (beyond the common keys), for `validate`."""
    type_ = str(item.get("type"))
    if type_ not in _WRITERS:
        return []  # the schema already says the type is unknown
    model: type[BaseModel] = _member(type_, 1)
    try:
        model.model_validate({k: v for k, v in item.items() if k not in common_keys})
    except ValidationError as exc:
        return describe(model, exc.errors(), common_keys)
    return []
