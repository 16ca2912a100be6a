"""Which groups of a target the engine owns (`manage_groups:`): membership in one of them that no
policy grants a worker is drift, and reconcile --fix removes it. Groups it does not own are
left alone, whoever put people in them.

`granted` (the default) owns every group any policy can grant in the target. Group names are
templates (`dept-{{ worker.department | slug }}`), so each is compiled to a pattern: its literal
text must match, each `{{ … }}` matches anything, and text inside a `{% if %}`/`{% for %}` block
may or may not be there."""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

from provisioner.rules.policy import PolicySet

_TAG = re.compile(r"({{.*?}}|{%.*?%}|{#.*?#})", re.DOTALL)
_OPENS = frozenset({"if", "for", "with", "filter", "block", "macro", "call"})


def template_pattern(source: str) -> re.Pattern[str]:
    """A regex every name this group template can render to matches (and a few more)."""
    pattern, _, _ = _sequence([t for t in _TAG.split(source) if t], 0)
    return re.compile(pattern, re.DOTALL)


def _keyword(tag: str) -> str:
    words = tag.strip("{%-+ }").split()
    return words[0] if words else ""


def _sequence(tokens: list[str], i: int) -> tuple[str, int, str | None]:
    """The pattern of tokens[i:] up to the `else`/`elif`/`end…` closing the enclosing block:
    (pattern, where it stopped, the keyword it stopped at, or None at the end)."""
    parts = []
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("{{"):
            parts.append(".*")
        elif token.startswith("{%"):
            keyword = _keyword(token)
            if keyword in ("else", "elif") or keyword.startswith("end"):
                return "".join(parts), i, keyword
            if keyword in _OPENS or (keyword == "set" and "=" not in token):
                branch, i = _block(tokens, i + 1)
                # Any one branch of an `if`, or none; a loop body any number of times.
                parts.append(f"(?:{branch})*" if keyword == "for" else f"(?:{branch})?")
                continue
        elif not token.startswith("{#"):
            parts.append(re.escape(token))
        i += 1
    return "".join(parts), i, None


def _block(tokens: list[str], i: int) -> tuple[str, int]:
    """The branches of one block as an alternation, and the index after its `end…` tag."""
    branches = []
    while True:
        body, i, stop = _sequence(tokens, i)
        branches.append(f"(?:{body})")
        if stop is None:
            return "|".join(branches), i
        i += 1
        if stop.startswith("end"):
            return "|".join(branches), i


class ManagedGroups:
    """`manage_groups:` of one target: `granted`, `all`, or a list of names (`*`/`?` globs allowed)."""

    def __init__(self, setting: str | list[str], granted: Iterable[str] = ()):
        self.everything = setting == "all"
        self.names = list(setting) if isinstance(setting, list) else []
        self.patterns = [template_pattern(t) for t in granted] if setting == "granted" else []

    @classmethod
    def of(cls, policies: PolicySet, target: str, setting: str | list[str]) -> ManagedGroups:
        templates = [t.source for p in policies.policies for g in p.grants if g.target == target for t in g.groups]
        return cls(setting, templates)

    def __call__(self, group: str) -> bool:
        return (
            self.everything
            or any(fnmatchcase(group, name) for name in self.names)
            or any(p.fullmatch(group) for p in self.patterns)
        )
