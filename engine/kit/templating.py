"""The one Jinja2 environment for policy conditions, group names and attribute mappings.

Sandboxed and immutable: a policy author can read a worker, never change it or reach Python.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.parser import Parser

from provisioner.engine.kit import fastpath
from provisioner.engine.kit.jinja import environment


class TemplateError(ValueError):
    """A condition or template that does not compile or does not render."""


def attributes_of(tree: nodes.Node, variable: str) -> list[str]:
    """The attributes read from `variable` (`worker.department`, `worker['title']`), in order: what
    `validate` checks against the model, since a misspelt one renders as nothing, silently."""
    found: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        of = getattr(node, "node", None)
        if not (isinstance(of, nodes.Name) and of.name == variable):
            continue
        key = getattr(node, "arg", None)
        if isinstance(node, nodes.Getattr):
            name = str(node.attr)
        elif isinstance(key, nodes.Const) and isinstance(key.value, str):
            name = key.value
        else:
            continue
        if name not in found:
            found.append(name)
    return found


class Template:
    """A compiled string template; renders to None when the result is empty."""

    def __init__(self, source: str):
        self.source = source
        try:
            self._template = environment().from_string(source)
            self.tree = environment().parse(source)
            self._fast = fastpath.compile_output(self.tree)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.message} in template {source!r}") from None

    def render(self, **context: Any) -> str | None:
        try:
            if self._fast is not None:
                try:
                    return self._fast(context).strip() or None
                except fastpath.Fallback:
                    pass
            text = self._template.render(**context).strip()
        except Exception as exc:  # jinja raises many kinds; the author needs the message either way
            raise TemplateError(f"{exc} in template {self.source!r}") from None
        return text or None


class Condition:
    """A compiled boolean expression such as `worker.department == 'Engineering'`."""

    def __init__(self, source: str):
        self.source = source
        try:
            env = environment()
            self._expression = env.compile_expression(source, undefined_to_none=False)
            parser = Parser(env, source, state="variable")
            self.tree = parser.parse_expression()
            self._fast = fastpath.compile_expression(self.tree)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.message} in condition {source!r}") from None

    def evaluate(self, **context: Any) -> bool:
        try:
            if self._fast is not None:
                try:
                    return bool(self._fast(context))
                except fastpath.Fallback:
                    pass
            return bool(self._expression(**context))
        except Exception as exc:
            raise TemplateError(f"{exc} in condition {self.source!r}") from None
