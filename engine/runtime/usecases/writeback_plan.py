"""What `plan` and `explain` show of writebacks (docs/writeback.md): the values due back in an HR
record, and the rules that write a person's record with their last runs. Reads; writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import Link, LogEntry
from provisioner.engine.runtime.usecases.writeback import ACTION, LinksOf, Writebacks, writeback_target


async def planned(
    writebacks: Writebacks,
    workers: Iterable[Worker],
    links_of: LinksOf,
    creates: dict[str, set[str]],
) -> list[dict[str, Any]]:
    """Every writeback `plan` shows for these workers (`creates`: worker id → targets the plan
    creates an account at); reads the accounts they would take values from, writes nothing."""
    chosen = [w for w in workers if any(r.source == w.source for r in writebacks.rules)]
    if not chosen:
        return []
    stored = await asyncio.to_thread(links_of, [w.id for w in chosen])
    rows = []
    for worker in chosen:
        links = {t: link for (w, t), link in stored.items() if w == worker.id}
        rows += await preview(writebacks, worker, links, creates.get(worker.id, set()))
    return rows


async def preview(
    writebacks: Writebacks, worker: Worker, links: dict[str, Link], creates: set[str]
) -> list[dict[str, Any]]:
    """Values due to be written back for this worker now (the app's account read), and those that
    wait for an account this plan creates (`creates`: its targets)."""
    rules = [r for r in writebacks.rules if r.source == worker.source and worker.in_employment]
    rows = [
        _row(worker, rule.field, None, rule.target, f"once {rule.target} creates the account and assigns it")
        for rule in rules
        if rule.target in creates and rule.target not in links
    ]
    pending = await writebacks.pending(worker, [r for r in rules if r.target in links], links)
    for name, value in (pending.values if pending else {}).items():
        target = next(r.target for r in rules if r.field == name)
        rows.append(_row(worker, name, value, target, f"{target} holds another {name} than HR"))
    return rows


def explained(writebacks: Writebacks, worker: Worker, log: Iterable[LogEntry]) -> dict[str, Any] | None:
    """What `explain` shows: the rules that write this person's HR record, and their last runs."""
    rules = [r for r in writebacks.rules if r.source == worker.source]
    if not rules:
        return None
    target = writeback_target(worker.source)
    return {
        "target": target,
        "fields": {r.field: {"from": r.target, "value": r.value.source} for r in rules},
        "log": [
            {"time": e.time, "action": e.action, "result": e.result, "reason": e.error or e.reason}
            for e in log
            if e.target == target
        ][-5:],
    }


def _row(worker: Worker, name: str, value: str | None, target: str, why: str) -> dict[str, Any]:
    """A pending writeback as `plan` lists it, in the shape of an action (its JSON stays one list)."""
    return {
        "worker_id": worker.id,
        "target": writeback_target(worker.source),
        "action": ACTION,
        "attributes": {name: value} if value is not None else {},
        "groups": [],
        "reason": f"{name} from {target}: {why}",
        "policy": None,
        "effective_at": None,
    }
