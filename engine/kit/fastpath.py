"""Direct evaluation of the simple templates and conditions that make up most policies.

`{{ worker.first_name or '' }}` or `worker.department == 'Engineering'` needs no Jinja context, no
generator, no string joining: these shapes are turned into plain closures at load time, which is
several times faster per call. Anything else — filters, calls, tests, loops — returns None here and
stays with the sandboxed Jinja2 environment, which also takes over at run time whenever a value is
not a plain attribute (`Fallback`), so the fast path never decides anything Jinja would decide
differently.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from jinja2 import nodes

from provisioner.engine.kit.jinja import environment  # the filters are defined once, there

Evaluator = Callable[[dict[str, Any]], Any]


class Fallback(Exception):
    """Raised at run time when only Jinja2 knows the answer (a missing name, a dict key, a method)."""


# Filters that take one value and no arguments, the same function Jinja2 would call.
SIMPLE_FILTERS = frozenset({"slug", "ascii", "lower", "upper", "trim", "title", "capitalize"})

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "gt": operator.gt,
    "lteq": operator.le,
    "gteq": operator.ge,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


def compile_output(template: nodes.Template) -> Evaluator | None:
    """A closure rendering a template to the same string Jinja2 would, or None if it is not simple."""
    if len(template.body) != 1 or not isinstance(template.body[0], nodes.Output):
        return None
    parts: list[Evaluator] = []
    for node in template.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            text = node.data
            parts.append(_constant(text))
        else:
            expression = compile_expression(node)
            if expression is None:
                return None
            parts.append(_rendered(expression))
    if len(parts) == 1:
        return parts[0]
    return lambda ctx: "".join(part(ctx) for part in parts)


def _constant(text: str) -> Evaluator:
    return lambda _ctx: text


def _rendered(expression: Evaluator) -> Evaluator:
    return lambda ctx: _text(expression(ctx))


def _text(value: Any) -> str:
    return "" if value is None else str(value)  # the environment's finalize: None renders empty


def compile_expression(node: nodes.Node) -> Evaluator | None:
    """A closure evaluating an expression node, or None for shapes left to Jinja2."""
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda _ctx: value
    if isinstance(node, nodes.Name):
        name = node.name

        def lookup(ctx: dict[str, Any]) -> Any:
            try:
                return ctx[name]
            except KeyError:
                raise Fallback from None

        return lookup
    if isinstance(node, nodes.Getattr):
        return _getattr(node)
    if isinstance(node, (nodes.List, nodes.Tuple)):
        items = [compile_expression(item) for item in node.items]
        if any(item is None for item in items):
            return None
        kind = list if isinstance(node, nodes.List) else tuple
        if all(isinstance(item, nodes.Const) for item in node.items):
            constant = kind(item.value for item in node.items)  # type: ignore[attr-defined]
            return lambda _ctx: constant
        return lambda ctx: kind(item(ctx) for item in items)  # type: ignore[misc]
    if isinstance(node, (nodes.Or, nodes.And)):
        left, right = compile_expression(node.left), compile_expression(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.Or):
            return lambda ctx: left(ctx) or right(ctx)
        return lambda ctx: left(ctx) and right(ctx)
    if isinstance(node, nodes.Not):
        inner = compile_expression(node.node)
        return None if inner is None else (lambda ctx: not inner(ctx))
    if isinstance(node, nodes.Concat):
        parts = [compile_expression(n) for n in node.nodes]
        if any(p is None for p in parts):
            return None
        return lambda ctx: "".join(str(p(ctx)) for p in parts)  # type: ignore[misc]
    if isinstance(node, nodes.Compare):
        return _compare(node)
    if isinstance(node, nodes.Filter):
        return _filter(node)
    return None


def _filter(node: nodes.Filter) -> Evaluator | None:
    inner = compile_expression(node.node) if node.node is not None else None
    if inner is None or node.name not in SIMPLE_FILTERS or node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
        return None
    fn = environment().filters[node.name]
    return lambda ctx: fn(inner(ctx))


def _getattr(node: nodes.Getattr) -> Evaluator | None:
    owner = compile_expression(node.node)
    attr = node.attr
    if owner is None or attr.startswith("_"):
        return None

    def get(ctx: dict[str, Any]) -> Any:
        value = getattr(owner(ctx), attr, Fallback)
        if value is Fallback or callable(value):
            raise Fallback  # a dict key, an undefined attribute or a method: Jinja's rules apply
        return value

    return get


def _compare(node: nodes.Compare) -> Evaluator | None:
    first = compile_expression(node.expr)
    steps = [(_COMPARE.get(op.op), compile_expression(op.expr)) for op in node.ops]
    if first is None or any(fn is None or ev is None for fn, ev in steps):
        return None

    def compare(ctx: dict[str, Any]) -> bool:
        left = first(ctx)
        for fn, ev in steps:
            right = ev(ctx)  # type: ignore[misc]
            if not fn(left, right):  # type: ignore[misc]
                return False
            left = right
        return True

    return compare
