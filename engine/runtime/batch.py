"""What a recorded batch did, for the totals and the metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.models import REVOCATIONS, ResultStatus
from provisioner.engine.contracts.records import EventOutcome, LogEntry


@dataclass
class BatchReport:
    applied: int = 0
    skipped: int = 0
    failed: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[WorkerEvent, str]] = field(default_factory=list)
    entries: list[LogEntry] = field(default_factory=list)  # this batch's log, for metrics; never accumulated
    # (target, when the change was seen) of each access removal confirmed, for metrics; never accumulated
    revoked: list[tuple[str, datetime]] = field(default_factory=list)

    @classmethod
    def of(cls, outcomes: list[EventOutcome]) -> BatchReport:
        report = cls()
        for outcome in outcomes:
            if outcome.failed:
                report.failed += 1
                if outcome.event is not None:
                    report.failures.append(
                        (
                            outcome.event,
                            "; ".join(
                                f"{e.target or e.action}: {e.error}" for e in outcome.log if e.result == "failure"
                            ),
                        )
                    )
            else:
                report.applied += 1
            report.actions.update(f"{e.action}:{e.result}" for e in outcome.log)
            if outcome.event is not None:
                seen = outcome.event.time
                report.revoked += [(e.target, seen) for e in outcome.log if e.target and _revoked(e)]
            report.entries += outcome.log
        return report

    def add(self, other: BatchReport) -> None:
        self.applied += other.applied
        self.skipped += other.skipped
        self.failed += other.failed
        self.actions.update(other.actions)
        self.failures += other.failures


def _revoked(entry: LogEntry) -> bool:
    return entry.result == ResultStatus.success and entry.action in REVOCATIONS
