"""What the loader says beyond "invalid": how to fix a YAML parser error a `${VAR}` caused, and
which values look like a variable but will be sent literally."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

# `token: ${X}` inside `{...}`: YAML reads `{` of `${` as the start of another flow mapping.
_FLOW_REF = re.compile(r"([\w.-]+)\s*:\s*(\$\{[^}]*\})")
# `$NAME` not written `${NAME}`: the loader expands only the braced form, so this stays literal.
_BARE_REF = re.compile(r"(?<![$\\])\$([A-Za-z_][A-Za-z0-9_]*)")


def yaml_hint(exc: yaml.YAMLError, text: str) -> str:
    """A parser error in the project's words; for an unquoted `${…}` in a flow mapping, the fix."""
    mark = getattr(exc, "problem_mark", None)
    context = str(getattr(exc, "context", "") or "")
    lines = text.splitlines()
    if mark is not None and "flow" in context:
        near = lines[max(0, mark.line - 1) : mark.line + 1]
        for line in reversed(near):
            found = _FLOW_REF.search(line)
            if found:
                key, ref = found.groups()
                return f'invalid YAML: an unquoted {ref} inside {{...}}: quote it: {key}: "{ref}"'
    problem = getattr(exc, "problem", None) or str(exc)
    return f"invalid YAML: {problem}" + (f" ({context})" if context else "")


def bare_refs(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(where, NAME) for every `$NAME` written without braces."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from bare_refs(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from bare_refs(value, (*path, i))
    elif isinstance(node, str):
        for match in _BARE_REF.finditer(node):
            yield path, match.group(1)
