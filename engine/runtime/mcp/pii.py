"""What a caller may read of a person: one redaction over any tool answer (JSON-ready data).

Two passes, because a person's data shows up under two guises: under a Worker field's own name (the
record in `explain`, a joined identity) and as a value written somewhere else (an attribute of an
account, a log row's attributes, a reason). Keys naming a hidden field are dropped; strings equal
to, or holding, a hidden value of a person the answer names are replaced."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import MCP_CALL

HIDDEN = "[hidden]"
WORKER_FIELDS = frozenset(Worker.model_fields)
# Keys whose string value names a person in the read models (log rows, failures, plans, diffs).
_PERSON_KEYS = frozenset({"id", "worker", "worker_id", "person", "subject", "manager_id"})
_SHORTEST = 3  # shorter values ("US", "HR") are kept: replacing them would blot out unrelated text


def people_named(data: Any) -> set[str]:
    """The person ids an answer names, by the keys the read models use for them."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _PERSON_KEYS and isinstance(value, str) and ":" in value:
                found.add(value)
            else:
                found |= people_named(value)
    elif isinstance(data, list):
        for item in data:
            found |= people_named(item)
    return found


def hidden_values(workers: Iterable[Worker], visible: frozenset[str]) -> list[str]:
    """The values of these people's hidden fields, longest first (so a longer value is replaced whole)."""
    values: set[str] = set()
    for worker in workers:
        for name in WORKER_FIELDS - visible:
            value = getattr(worker, name)
            scalars = value.values() if isinstance(value, dict) else [value]
            values |= {str(getattr(v, "value", v)) for v in scalars if v is not None and not isinstance(v, bool)}
    return sorted((v for v in values if len(v) >= _SHORTEST), key=len, reverse=True)


def as_seen(worker: Worker, visible: frozenset[str]) -> Worker:
    """The person as this caller knows them: hidden fields unknown (their defaults). What a caller's
    own expressions are evaluated on (a proposed config's conditions and mappings): evaluated on the
    real record, who matches `worker.personal_email.startswith('a')` would spell out hidden values.
    The ids stay: a Worker is no one without them."""
    unknown = {
        name: field.get_default(call_default_factory=True)
        for name, field in Worker.model_fields.items()
        if name not in visible and not field.is_required()
    }
    return Worker.model_validate({**worker.model_dump(), **unknown})


def _call_told(attributes: dict[str, Any]) -> dict[str, Any]:
    """A tool call's log row without what its caller typed (an operator's search for a personal
    email, a proposed config): only whom and which app it was about."""
    arguments = attributes.get("arguments")
    if not isinstance(arguments, dict):
        return attributes
    return {**attributes, "arguments": {k: v for k, v in arguments.items() if k in _PERSON_KEYS | {"target"}}}


def without(data: Any, values: Iterable[str], by: str) -> Any:
    """`data` with each of these values, wherever a string holds it, replaced `by` a word."""
    shown = sorted(set(values), key=len, reverse=True)
    return _redacted(data, None, re.compile("|".join(map(re.escape, shown))), by) if shown else data


def redact(data: Any, visible: frozenset[str] | None, values: list[str]) -> Any:
    """`data` without what `visible` does not show (None: everything is shown). A value is found
    whatever its case: a mapping's `| lower` or `| upper` does not make it another value."""
    if visible is None:
        return data
    pattern = re.compile("|".join(map(re.escape, values)), re.IGNORECASE) if values else None
    return _redacted(data, visible, pattern)


def _redacted(data: Any, visible: frozenset[str] | None, pattern: re.Pattern[str] | None, by: str = HIDDEN) -> Any:
    """Strings matching `pattern` replaced; with `visible`, also hidden fields and typed arguments dropped."""
    if isinstance(data, dict):
        if visible is None:
            return {k: _redacted(v, None, pattern, by) for k, v in data.items()}
        if data.get("action") == MCP_CALL and isinstance(data.get("attributes"), dict):
            data = {**data, "attributes": _call_told(data["attributes"])}
        return {
            k: _redacted(v, visible, pattern, by) for k, v in data.items() if k in visible or k not in WORKER_FIELDS
        }
    if isinstance(data, list):
        return [_redacted(item, visible, pattern, by) for item in data]
    if isinstance(data, str) and pattern is not None:
        return pattern.sub(by, data)
    return data
