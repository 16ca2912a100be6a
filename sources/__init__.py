"""Source connectors: each is a short file mapping one vendor's records to Workers."""

from __future__ import annotations

from typing import Any

from engine.protocols import Source


def build_source(name: str, type_: str, settings: dict[str, Any]) -> Source:
    """Instantiate the connector for a config entry; raises ValueError naming what is wrong."""
    if type_ == "file":
        from sources.file import FileSource

        return FileSource.from_settings(name, settings)
    if type_ == "bamboohr":
        from sources.bamboohr import BambooHRSource

        return BambooHRSource.from_settings(name, settings)
    raise ValueError(f"unknown source type {type_!r} (known: bamboohr, file)")


SOURCE_TYPES = ("bamboohr", "file")
