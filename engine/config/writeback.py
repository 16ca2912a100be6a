"""The `writeback:` block: values an app assigned, written back to the HR record."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from provisioner.engine.config.base import Strict
from provisioner.engine.kit.templating import Template, TemplateError

# phone is a field the connectors can write, not one the Worker holds: whether HR holds it already
# cannot be told, so it is not offered until the Worker model has it.
WritebackField = Literal["work_email", "username"]


class WritebackFrom(Strict):
    target: str = Field(description="the target whose account holds the value")
    value: str = Field(description="a template over the account as the app returns it, e.g. {{ account.userName }}")


class WritebackConfig(Strict):
    """A value the app assigned (an email, a username) written back to the person's HR record
    (docs/writeback.md)."""

    source: str = Field(description="the source whose HR records receive the value")
    field: WritebackField = Field(description="the Worker field written: work_email, username or phone")
    from_: WritebackFrom = Field(alias="from", description="where the value comes from")


def writeback_problems(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """What the schema cannot say of `writeback:`: the source and target it names exist, its value
    compiles, and one source field is written from one place. Works on the raw data (the loader
    reports these with file:line, together with the schema's own problems)."""
    names = {
        kind: {str(item.get("name")) for item in data.get(kind) or [] if isinstance(item, dict)}
        for kind in ("sources", "targets")
    }
    problems: list[tuple[tuple[Any, ...], str]] = []
    seen: set[tuple[str, str]] = set()
    rules = data.get("writeback")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        source, origin = rule.get("source"), rule.get("from")
        if isinstance(source, str) and source not in names["sources"]:
            known = _known(names["sources"])
            problems.append((("writeback", i, "source"), f"unknown source {source!r} (known: {known})"))
        if (source, rule.get("field")) in seen:
            problems.append((("writeback", i, "field"), f"{rule.get('field')} of {source} is written back twice"))
        seen.add((str(source), str(rule.get("field"))))
        if not isinstance(origin, dict):
            continue
        target = origin.get("target")
        if isinstance(target, str) and target not in names["targets"]:
            known = _known(names["targets"])
            problems.append((("writeback", i, "from", "target"), f"unknown target {target!r} (known: {known})"))
        if isinstance(origin.get("value"), str):
            try:
                Template(origin["value"])
            except TemplateError as exc:
                problems.append((("writeback", i, "from", "value"), f"writeback value: {exc}"))
    return problems


def _known(names: set[str]) -> str:
    return ", ".join(sorted(names)) or "none"
