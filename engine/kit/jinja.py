"""The one sandboxed Jinja2 environment and its filters, shared by full templates and the fast path."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment


def slug(value: Any) -> str:
    """'Research & Development' → 'research-development'."""
    text = ascii_fold(value).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def ascii_fold(value: Any) -> str:
    """'José Ñúñez' → 'Jose Nunez'."""
    if value is None:
        return ""
    return unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    # finalize: a missing value renders as nothing, not as the word "None" in someone's title
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, finalize=lambda value: "" if value is None else value
    )
    env.filters["slug"] = slug
    env.filters["ascii"] = ascii_fold
    return env
