"""Config errors never echo a value that came from the environment: a secret put under the wrong
key (a token where a rate belongs) would otherwise be printed in the error about that key."""

from __future__ import annotations

import os
from collections.abc import Iterable

MIN_SECRET = 4  # shorter values ("1", "yes") are not worth hiding and would blot out the message


def env_values(names: Iterable[str]) -> dict[str, str]:
    """name → value of the environment variables a config refers to that are set."""
    return {name: os.environ[name] for name in set(names) if len(os.environ.get(name, "")) >= MIN_SECRET}


def redacted(message: str, values: dict[str, str]) -> str:
    for name, value in sorted(values.items(), key=lambda item: -len(item[1])):
        message = message.replace(value, f"<the value of ${{{name}}}>")
        message = message.replace(repr(value)[1:-1], f"<the value of ${{{name}}}>")
    return message
