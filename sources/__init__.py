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


def build_source(name: str, type_: str, settings: dict[str, Any]) -> Source:
    """Instantiate the connector for a config entry; raises ValueError naming what is wrong."""
    if type_ not in CONNECTORS:
        raise ValueError(f"unknown source type {type_!r} (known: {', '.join(SOURCE_TYPES)})")
    module, _, cls = CONNECTORS[type_].partition(":")
    return getattr(importlib.import_module(module), cls).from_settings(name, settings)
