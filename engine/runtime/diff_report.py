"""What `provisioner diff` found: each change (a kind, a target, a person, the policies
responsible), the attribute mappings the change edits, and the counts the CLI's gates read."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from provisioner.engine.contracts.models import ActionKind

DEPROVISIONS = frozenset({ActionKind.disable.value, ActionKind.delete.value})
REVOCATIONS = DEPROVISIONS | {ActionKind.remove_groups.value}


@dataclass(frozen=True)
class Change:
    target: str
    kind: str  # an ActionKind value, or whatever kind an Action says
    worker_id: str
    detail: str = ""  # the group, the attribute, when a deferred action falls due
    policies: tuple[str, ...] = ()
    why: str = ""  # the new config's word on this person's scope there
    undone: bool = False  # the base config would do it, the new one no longer does

    @property
    def section(self) -> str:
        return f"{self.kind} (no longer)" if self.undone else self.kind


@dataclass(frozen=True)
class MappingChange:
    target: str
    attribute: str
    old: str | None
    new: str | None
    people: int


@dataclass
class DiffReport:
    population: int = 0
    changes: list[Change] = field(default_factory=list)
    mappings: list[MappingChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # people the new config cannot be evaluated for
    notes: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for c in self.changes:
            out.setdefault(c.target, Counter())[c.section] += 1
        return {t: dict(sorted(n.items())) for t, n in sorted(out.items())}

    def people(self) -> set[str]:
        return {c.worker_id for c in self.changes}

    def deprovisions(self) -> int:
        return sum(c.kind in DEPROVISIONS and not c.undone for c in self.changes)

    def revocations(self) -> int:
        return sum(c.kind in REVOCATIONS and not c.undone for c in self.changes)

    def as_json(self) -> dict[str, Any]:
        return {
            "population": self.population,
            "people_affected": len(self.people()),
            "counts": self.counts(),
            "changes": [{**asdict(c), "name": self.names.get(c.worker_id)} for c in self.changes],
            "mappings": [asdict(m) for m in self.mappings],
            "errors": self.errors,
            "notes": self.notes,
        }
