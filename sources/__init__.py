"""Source connectors: each is a short file mapping one vendor's records to Workers."""

from __future__ import annotations

import importlib
from typing import Any

from engine.protocols import Source

# type -> "module:class"; each class has from_settings(name, settings)
CONNECTORS = {
    "bamboohr": "sources.bamboohr:BambooHRSource",
    "file": "sources.file:FileSource",
    "greenhouse": "sources.greenhouse:GreenhouseSource",
    "lever": "sources.lever:LeverSource",
    "rest": "sources.rest:RestSource",
    "workable": "sources.workable:WorkableSource",
    "workday": "sources.workday:WorkdaySource",
}
SOURCE_TYPES = tuple(CONNECTORS)


def _connector(type_: str) -> Any:
    if type_ not in CONNECTORS:
        raise ValueError(f"unknown source type {type_!r} (known: {', '.join(SOURCE_TYPES)})")
    module, _, cls = CONNECTORS[type_].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_source(name: str, type_: str, settings: dict[str, Any]) -> Source:
    """Instantiate the connector for a config entry; raises ValueError naming what is wrong."""
    return _connector(type_).from_settings(name, settings)


def settings_problems(item: dict[str, Any], common_keys: set[str]) -> list[tuple[tuple[Any, ...], str]]:
    """Problems with one config entry's connector settings, each at its key (for `validate`)."""
    try:
        connector = _connector(str(item.get("type")))
    except ValueError as exc:
        return [(("type",), str(exc))]
    check = getattr(connector, "problems", None)
    return check({k: v for k, v in item.items() if k not in common_keys}) if check else []
