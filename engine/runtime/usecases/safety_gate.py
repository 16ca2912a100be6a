"""The one mass-deprovision gate: a poll, due work and provision-now all pass it.

`rules.safety.SafetyGuard` judges (pure: would these events deprovision more than the limits
allow?); the gate does what the judgement means for the source, inside the caller's unit of work:
it reads the source's halt, spends a person's approval (`provisioner resume`) on what would have
been held, halts the source when the limits trip, and says so in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.store import Store
from provisioner.rules.safety import SafetyGuard


@dataclass(frozen=True)
class Occasion:
    """What is being judged, in the words each of its lines uses."""

    scope: str  # in the verdict: "7 workers would be deprovisioned <scope>"
    logger: str
    passed: str = ""  # logged when a person's approval lets the held deprovisions through
    waits: str = ""  # logged with a new halt: what became of the rest
    tell_held: bool = False  # log the count held back while the source is already halted
    acts: bool = True  # False: judges only (never halts the source nor spends an approval)


POLL = Occasion(
    "in one poll",
    "provisioner.poll",
    passed="deprovisioning events go through",
    waits="nothing was deprovisioned, the rest was applied",
    tell_held=True,
)
DUE = Occasion(
    "by scheduled changes falling due together",
    "provisioner.engine",
    passed="scheduled deprovisions go through",
    waits="those scheduled changes wait",
)
ON_DEMAND = Occasion("on demand", "provisioner.engine", acts=False)


@dataclass
class Admission:
    held: set[str] = field(default_factory=set)  # event ids held back
    reason: str | None = None  # why: the new halt, or the halt the source was already under


class SafetyGate:
    def __init__(self, guard: SafetyGuard, store: Store):
        self.guard = guard
        self.store = store

    def admit(
        self,
        s: Session,
        source: str,
        events: list[WorkerEvent],
        occasion: Occasion,
        now: datetime,
        known_workers: int,
    ) -> Admission:
        """Which of one source's events may go on. `known_workers`: what the ratio is of, the
        workers of this source the store knows (its snapshots)."""
        if not events:
            return Admission()
        state = self.store.sources.states(s).get(source)
        halted = state.reason if state and state.halted else None
        links = self.store.links.for_workers({e.subject for e in events})
        verdict = self.guard.check(events, links, known_workers, halted, now, occasion.scope)
        if not occasion.acts or not verdict.held:
            return Admission(verdict.held, verdict.reason)
        log = logging.getLogger(occasion.logger)
        where = {"source": source}
        if halted:
            if occasion.tell_held:
                log.warning(
                    "source %s is halted (%s): %d deprovisioning events held back",
                    source,
                    halted,
                    len(verdict.held),
                    extra=where,
                )
            return Admission(verdict.held, halted)
        if self.store.sources.consume_approval(source, s=s):
            log.warning("source %s: %s, approved by provisioner resume", source, occasion.passed)
            return Admission()
        self.store.sources.halt(source, verdict.reason or "", s)
        log.error(
            "source %s halted: %s; %s. Check the source, then run: provisioner resume %s",
            source,
            verdict.reason,
            occasion.waits,
            source,
            extra=where,
        )
        return Admission(verdict.held, verdict.reason)
