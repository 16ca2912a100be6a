"""The part of OData v2's `$filter` the SuccessFactors emulator evaluates: comparisons (`eq ne gt ge
lt le`), `in` lists, `and`/`or`/`not`, parentheses, and paths through expanded navigations. A path
through a collection matches when any of its entities does, which is how SuccessFactors evaluates
`lastModifiedDateTime` across the segments of an effective-dated entity
(https://userapps.support.sap.com/sap/support/knowledge/en/2920680).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from provisioner.sources.successfactors.odata import parse_moment

Row = dict[str, Any]
Test = Callable[[Row], bool]

_TOKEN = re.compile(
    r"\s*(datetimeoffset'[^']*'|datetime'[^']*'|'(?:[^']|'')*'|\(|\)|,|-?\d+(?:\.\d+)?|[A-Za-z_$][\w/$]*)"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}


class FilterError(ValueError):
    """A `$filter` this emulator (or SuccessFactors) cannot parse."""


def _literal(token: str) -> Any:
    if token.startswith(("datetimeoffset'", "datetime'")):
        text = token.split("'", 1)[1].rstrip("'")
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    if token in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[token]
    if re.fullmatch(r"-?\d+(?:\.\d+)?", token):
        return float(token) if "." in token else int(token)
    raise FilterError(f"not a literal: {token}")


def _comparable(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("/Date("):
        return parse_moment(value)
    return value


def values_at(row: Any, path: list[str]) -> list[Any]:
    """Every value a path reaches, fanning out through `{"results": [...]}` collections."""
    if not path:
        return [row]
    if isinstance(row, dict) and isinstance(row.get("results"), list):
        return [v for item in row["results"] for v in values_at(item, path)]
    if not isinstance(row, dict):
        return []
    return values_at(row.get(path[0]), path[1:]) if path[0] in row else []


class _Parser:
    def __init__(self, text: str):
        self.tokens = _TOKEN.findall(text)
        if "".join(self.tokens).replace(" ", "") != text.replace(" ", ""):
            raise FilterError(f"cannot parse $filter near {text[:60]!r}")
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise FilterError("$filter ends too early")
        self.at += 1
        return token

    def expr(self) -> Test:
        tests = [self.conjunction()]
        while self.peek() == "or":
            self.take()
            tests.append(self.conjunction())
        return lambda row: any(t(row) for t in tests)

    def conjunction(self) -> Test:
        tests = [self.unary()]
        while self.peek() == "and":
            self.take()
            tests.append(self.unary())
        return lambda row: all(t(row) for t in tests)

    def unary(self) -> Test:
        if self.peek() == "not":
            self.take()
            inner = self.unary()
            return lambda row: not inner(row)
        if self.peek() == "(":
            self.take()
            inner = self.expr()
            if self.take() != ")":
                raise FilterError("unbalanced parentheses in $filter")
            return inner
        return self.comparison()

    def comparison(self) -> Test:
        path = self.take().split("/")
        op = self.take()
        if op == "in":
            wanted = [_literal(self.take())]
            while self.peek() == ",":
                self.take()
                wanted.append(_literal(self.take()))
            return lambda row: any(_comparable(v) in wanted for v in values_at(row, path))
        if op not in _COMPARE:
            raise FilterError(f"unknown operator {op!r} in $filter")
        value, compare = _literal(self.take()), _COMPARE[op]
        if op == "ne" and value is None:
            return lambda row: any(v is not None for v in values_at(row, path))
        return lambda row: any(compare(_comparable(v), value) for v in values_at(row, path))


def compile_filter(text: str | None) -> Test:
    if not text:
        return lambda row: True
    parser = _Parser(text)
    test = parser.expr()
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek()!r} in $filter")
    return test
