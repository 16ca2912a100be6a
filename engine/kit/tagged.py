"""Configured components chosen by a tag key (`style:` of a paging block, `type:` of an auth block)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def default_tag(key: str, default: str) -> Callable[[Any], Any]:
    """A before-validator giving a block without `key` the `default` one, so that a tagged union
    still reads the blocks written before it had a tag (they meant the default)."""

    def tagged(value: Any) -> Any:
        return {key: default, **value} if isinstance(value, dict) and key not in value else value

    return tagged
