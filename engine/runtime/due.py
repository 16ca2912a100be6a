"""Deferred actions falling due become events, held back per source by the same safety guard as
a poll: fifty end-of-day terminations from a bad import halt the source instead of disabling fifty
people at midnight."""

from __future__ import annotations

import logging
from datetime import datetime

from provisioner.engine.contracts.events import WorkerEvent, scheduled_event
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.runtime.poller import judge
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.store import Deferred

log = logging.getLogger("provisioner.engine")


def due_events(
    parts: Parts, rows: list[Deferred], now: datetime, halts: dict[str, str], approved: set[str], spent: set[str]
) -> tuple[list[WorkerEvent], set[str]]:
    due: dict[str, datetime] = {}
    for row in rows:
        due[row.worker_id] = max(due.get(row.worker_id, row.effective_at), row.effective_at)
    events = [scheduled_event(wid, parts.store.snapshots.get(wid), when) for wid, when in sorted(due.items())]
    by_source: dict[str, list[WorkerEvent]] = {}
    for event in events:
        by_source.setdefault(WorkerId.parse(event.subject).source, []).append(event)
    states, held_ids = parts.store.sources.states(), set()
    for source, mine in by_source.items():
        state = states.get(source)
        halted = state.reason if state and state.halted else None
        held, reason, approval_spent = judge(
            parts.guard,
            mine,
            state.workers if state else 0,
            halted,
            source in approved,
            now=now,
            scope="by scheduled changes falling due together",
        )
        if approval_spent:
            log.warning("source %s: scheduled deprovisions go through, approved by provisioner resume", source)
            spent.add(source)
        held_ids |= held
        if reason and not halted:
            halts[source] = reason
    return [e for e in events if e.id not in held_ids], {e.subject for e in events if e.id in held_ids}
