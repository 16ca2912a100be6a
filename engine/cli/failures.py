"""CLI about writes that failed: `failures` lists them, `retry` applies them again now; and what
`sync` needs to apply due retries and tell the truth in its exit code."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _store_or_exit, console, err, known_targets
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt, TargetsOpt, WorkerOpt
from provisioner.engine.cli.progress import applying
from provisioner.engine.cli.safe import shown
from provisioner.engine.config import Config
from provisioner.engine.contracts.records import AccessNotRemoved, Failure, MayKeepAccess
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime import views
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.store import Store


def failures(
    config: ConfigOpt = DEFAULT_CONFIG,
    worker: WorkerOpt = None,
    target: TargetsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every write that is retrying or dead-lettered: worker, target, action, attempts, next retry, last
    error."""
    cfg = _load(config, secrets=False)  # the store's records alone: no secrets needed
    targets = known_targets(cfg, target)
    rows = [r for r in views.failures(_store_or_exit(cfg), worker=worker) if targets is None or r["target"] in targets]
    if as_json:
        print(json.dumps(rows, indent=2, default=lambda value: value.isoformat()))
        return
    if not rows:
        console.print("[green]no failures[/green]: every write was applied")
        return
    table = Table(title=f"failures: {plural(len(rows), 'write')}")
    for column in ("worker", "target", "action", "state", "attempts", "next retry (UTC)", "last error"):
        table.add_column(column)
    for r in rows:
        state = "[yellow]retrying[/yellow]" if r["state"] == "retrying" else "[red]dead[/red]"
        waiting = "on its way" if r["state"] == "retrying" else "-"
        when = f"{r['next_retry']:%Y-%m-%d %H:%M:%S}" if r["next_retry"] else waiting
        table.add_row(
            shown(r["worker"]), r["target"], r["action"], state, str(r["attempts"]), when, shown(r["last_error"])
        )
    console.print(table)
    for r in rows:
        if r["access_not_removed"]:
            console.print(
                f"[red]access not removed[/red] {shown(r['worker'])} → {r['target']}: "
                f"{shown(', '.join(r['access_not_removed']))}"
                f" (since {r['first_at']:%Y-%m-%d %H:%M:%S} UTC)"
            )
    if any(r["state"] == "dead" for r in rows):
        console.print("after fixing the cause: provisioner retry --all (or --worker ID, --target NAME)")


def retry(
    config: ConfigOpt = DEFAULT_CONFIG,
    worker: WorkerOpt = None,
    target: TargetsOpt = None,
    everything: Annotated[bool, typer.Option("--all", help="Every retrying and dead item.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the retries to be applied.")] = 600,
) -> None:
    """Re-plan those items from the current snapshot and apply them now; success clears them. Exit 1 if
    any remain."""
    if not (worker or target or everything):
        err.print("[red]error[/red] say which: --worker ID, --target NAME or --all")
        raise typer.Exit(2)
    cfg = _load(config)
    targets = known_targets(cfg, target)

    def pending() -> list[Failure]:
        return [f for f in _store_or_exit(cfg).failures.all(None, worker) if targets is None or f.target in targets]

    before = pending()
    if not before:
        console.print("nothing to retry")
        return
    asyncio.run(_retry(cfg, worker, targets, everything, timeout))
    after = {(f.worker_id, f.target): f for f in pending()}
    for item in before:
        now = after.get((item.worker_id, item.target))
        if now is None:
            console.print(f"[green]applied[/green] {shown(item.worker_id)} → {item.target}")
        else:
            console.print(f"[red]{now.state}[/red] {shown(item.worker_id)} → {item.target}: {shown(now.last_error)}")
    healed = sum((f.worker_id, f.target) not in after for f in before)
    console.print(f"{healed} applied, {len(before) - healed} still failing")
    if len(before) > healed:
        raise typer.Exit(1)


async def _retry(cfg: Config, worker: str | None, targets: list[str] | None, everything: bool, timeout: float) -> None:
    async with Runtime(cfg) as runtime:
        each: list[str | None] = list(targets) if targets else [None]
        for target in each:
            runtime.retry_due(worker_id=worker, target=target, everything=everything)
        await applying(err, runtime, timeout)


async def apply_due_retries(runtime: Runtime, timeout: float) -> int:
    """Every retry that falls due while we run, applied before `sync` exits: a retry that
    fails again is rescheduled further out, so this ends (at the latest when attempts run out)."""
    deadline = time.monotonic() + timeout
    rounds = 0
    while time.monotonic() < deadline and runtime.retry_due():
        rounds += 1
        await runtime.wait_idle(max(1.0, deadline - time.monotonic()))
    return rounds


def unsettled(store: Store, config_path: str) -> bool:
    """Says what is still retrying or dead (from this run or an earlier one); True when anything is."""
    items = store.failures.all()
    if not items:
        return False
    dead = sum(f.state == "dead" for f in items)
    retrying = len(items) - dead
    soonest = store.failures.next_due()
    when = f", next retry at {soonest:%H:%M:%S} UTC" if soonest else ""
    err.print(
        f"[red]not everything is applied[/red]: {retrying} retrying{when}, {plural(dead, 'dead letter')}. "
        f"See them: provisioner failures -c {config_path}"
    )
    return True


def access_kept(store: Store) -> bool:
    """Says who still holds access they should not; True when anyone does (`sync` and
    `status` exit 1 then)."""
    lines = access_lines(store.access.not_removed(), store.access.unreadable_holders())
    for line in lines:
        err.print(line)
    return bool(lines)


def access_lines(kept: list[AccessNotRemoved], unreadable: list[MayKeepAccess]) -> list[str]:
    """One line per leaver who keeps access, and per holder of accounts whose record is unreadable."""
    lines = [
        f"[red]access not removed[/red] {shown(a.worker_id)} → {a.target}: {shown(', '.join(a.remains))} "
        f"(since {a.since:%Y-%m-%d %H:%M:%S} UTC): {shown(a.error)}"
        for a in kept
    ]
    lines += [
        f"[red]may keep access[/red] {shown(u.worker_id)} ({', '.join(u.targets)}): their {u.source} record could "
        f"not be read, so no change to it is applied: {shown(u.reason)}"
        for u in unreadable
    ]
    return lines
