"""The mass-deprovision guard: checked on a whole poll's plan before anything is applied (and on
scheduled changes falling due together, and on one person provisioned now). This is the judgement
alone, pure; the runtime's SafetyGate (engine/runtime/usecases/safety_gate.py) halts the source,
spends approvals and says so.

A source that suddenly returns nobody (an expired API key answering an empty list, a broken
report filter) must not disable the company. When a poll would deprovision more workers than
`safety.max_deprovisions`, or more than `max_deprovision_ratio` of the source's workers, those
events are held back (their snapshots stay as they were, so nothing is lost), everything else
flows, and the source is halted until `provisioner resume SOURCE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from provisioner.engine.config import SafetyConfig
from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.models import DEPROVISIONING
from provisioner.engine.contracts.records import Link, by_worker
from provisioner.rules.planner import Planner


@dataclass
class Verdict:
    held: set[str] = field(default_factory=set)  # event ids held back
    reason: str | None = None  # set when the limit tripped (or the source was already halted)


class SafetyGuard:
    def __init__(self, config: SafetyConfig, planner: Planner):
        self.config = config
        self.planner = planner

    def deprovisions(self, event: WorkerEvent, links: dict[str, Link], now: datetime) -> bool:
        """Would applying this event now disable or delete an account?"""
        if not links:
            return False
        try:
            actions = self.planner.plan(event, links, now)
        except ValueError:
            return False  # a policy error fails at apply time, with its message
        return any(a.action in DEPROVISIONING and a.effective_at is None for a in actions)

    def check(
        self,
        events: list[WorkerEvent],
        links: dict[tuple[str, str], Link],
        known_workers: int,
        halted: str | None,
        now: datetime,
        scope: str = "in one poll",
    ) -> Verdict:
        mine = by_worker(links)
        risky = {ev.id for ev in events if self.deprovisions(ev, mine.get(ev.subject, {}), now)}
        if not risky:
            return Verdict()
        if halted:
            return Verdict(risky, halted)
        count = len({ev.subject for ev in events if ev.id in risky})
        limit, ratio = self.config.max_deprovisions, self.config.max_deprovision_ratio
        if limit is not None and count > limit:
            return Verdict(risky, f"{count} workers would be deprovisioned {scope} (max_deprovisions: {limit})")
        # The ratio needs more than one person: one leaver in a five-person test source is no accident.
        if ratio is not None and count > max(1, ratio * known_workers):
            return Verdict(
                risky,
                f"{count} of {known_workers} workers would be deprovisioned {scope} "
                f"(max_deprovision_ratio: {ratio:.0%})",
            )
        return Verdict()
