"""`provisioner plan` (what a sync would do now) and `provisioner explain` (why a person has or
lacks each account, and what a leaver keeps)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _parts_or_exit, console, err, known_targets
from provisioner.engine.cli.logs import setup
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt, TargetsOpt, WorkerOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.config import Config
from provisioner.engine.contracts.models import ActionKind
from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.contracts.records import by_worker
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.operations import unknown_worker
from provisioner.engine.runtime.policytools import explain as explain_worker
from provisioner.engine.runtime.poller import diff
from provisioner.engine.runtime.usecases.writeback_plan import planned as planned_writebacks


def plan(
    config: ConfigOpt = DEFAULT_CONFIG, worker: WorkerOpt = None, target: TargetsOpt = None, as_json: JsonOpt = False
) -> None:
    """The actions a sync would take now. Reads the sources; changes nothing."""
    setup(False)
    cfg = _load(config)
    targets = known_targets(cfg, target)
    planned, writebacks = asyncio.run(_plan(cfg, worker))
    actions = [a for a in planned if targets is None or a.target in targets]
    writebacks = [w for w in writebacks if targets is None or w["target"] in targets]
    if as_json:
        print(json.dumps([*(a.model_dump(mode="json") for a in actions), *writebacks], indent=2))
        return
    table = Table(title=f"plan: {plural(len(actions), 'action')}")
    for col in ("target", "worker", "action", "when", "reason"):
        table.add_column(col)
    waits = sum(1 for a in actions if a.action is ActionKind.pending_approval)
    ordered = sorted(actions, key=lambda a: (a.target, a.worker_id))
    for i, a in enumerate(ordered):
        last_of_target = i + 1 == len(ordered) or ordered[i + 1].target != a.target
        table.add_row(
            a.target,
            shown(a.worker_id),
            a.action.value,
            a.effective_at.strftime("%Y-%m-%d %H:%M %Z") if a.effective_at else "now",
            shown(a.reason),
            end_section=last_of_target,
        )
    for w in writebacks:  # values an app assigned, due back in the HR record (usecases/writeback.py)
        table.add_row(w["target"], shown(w["worker_id"]), w["action"], "now", shown(w["reason"]))
    console.print(table)
    if waits:
        console.print(
            f"{plural(waits, 'grant')} wait for approval: nothing is written for them until approved "
            "(provisioner approvals list)"
        )


async def _plan(cfg: Config, only: str | None) -> tuple[list[Any], list[dict[str, Any]]]:
    parts = _parts_or_exit(cfg)
    actions, workers = [], []
    try:
        for name, source in parts.sources.items():
            try:
                read = await source.read(parts.store.snapshots.cursor(name))
            except SourceError as exc:
                err.print(f"[red]error[/red] {exc}")
                raise typer.Exit(1) from None
            events = [
                e
                for e in diff(name, read, parts.store.snapshots.of_source(name)).events
                if only is None or e.subject == only
            ]
            links = by_worker(parts.store.links.for_workers({e.subject for e in events}))
            workers += [e.data.worker for e in events if e.data.worker is not None]
            approved = parts.approved([e.subject for e in events])
            for event in events:
                try:
                    actions += parts.planner.plan(
                        event, links.get(event.subject, {}), None, parts.account_of, approved.get(event.subject, ())
                    )
                except ValueError as exc:  # a policy that cannot be evaluated for this person: one line
                    err.print(f"[red]error[/red] {exc}")
                    raise typer.Exit(1) from None
        # Also those whose writeback failed, and the one person asked about: their HR values did not
        # change, so this read has no event of theirs.
        again = {f.worker_id for f in parts.store.failures.all() if f.target.startswith("writeback:")}
        again = ({only} if only else again) - {w.id for w in workers}
        workers += [w for wid in sorted(again) if (w := parts.store.snapshots.get(wid)) is not None]
        if only and only not in {w.id for w in workers} and not any(a.worker_id == only for a in actions):
            err.print(f"[red]error[/red] {unknown_worker(only)}")  # as the API and MCP say it, and explain exits
            raise typer.Exit(1)
        creates: dict[str, set[str]] = {}
        for a in actions:
            if a.action.value == "create":
                creates.setdefault(a.worker_id, set()).add(a.target)
        writebacks = await planned_writebacks(parts.writebacks, workers, parts.store.links.for_workers, creates)
    finally:
        await parts.aclose()
    return actions, writebacks


def explain(
    worker_id: Annotated[str | None, typer.Argument(hidden=True, metavar="ID", help="Older form of --worker.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    worker: WorkerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Why this person has (or lacks) each account: every policy's condition and value, scope, link,
    log, and what they keep once they leave."""
    chosen = worker or worker_id
    if chosen is None:
        err.print("[red]error[/red] say whom: --worker ID (e.g. --worker hr:1001)")
        raise typer.Exit(2)
    setup(False)  # on this command's own stderr, as plan does
    cfg = _load(config, secrets=False)  # stored data and policies: no secrets needed
    parts = _parts_or_exit(cfg)
    try:
        report = explain_worker(parts, chosen)
    except (LookupError, ValueError) as exc:  # unknown worker; a policy that cannot be evaluated for them
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    leaving = {t.name: _kept_on_leaving(t.on_terminate.action, t.on_terminate.remove_groups) for t in cfg.targets}
    if as_json:
        for name, t in report["targets"].items():
            t["on_leaving"] = leaving.get(name)
        print(json.dumps(report, indent=2, default=str))
        return
    w = report["worker"]
    console.print(
        f"[bold]{shown(chosen)}[/bold] {shown(w.get('first_name') or '')} {shown(w.get('last_name') or '')} · "
        f"{shown(w.get('status'))} · {shown(w.get('department') or '-')} · {shown(w.get('employment_type') or '-')}"
    )
    for name, t in report["targets"].items():
        _print_target(name, t, leaving.get(name, ""))
    if wb := report.get("writeback"):
        fields = ", ".join(f"{f} from {v['from']} ({v['value']})" for f, v in wb["fields"].items())
        console.print(f"\n[bold]{wb['target']}[/bold]: writes back {shown(fields)}")
        for e in wb["log"]:
            console.print(f"  log {e['time']:%Y-%m-%d %H:%M}: {e['action']} {e['result']} — {shown(e['reason'])}")


def _kept_on_leaving(on_terminate: str, remove_groups: bool) -> str:
    if on_terminate == "delete":
        return "when they leave: the account is deleted"
    if remove_groups:
        return "when they leave: the account is disabled and its managed groups removed"
    return "when they leave: the account is disabled and keeps its groups (remove_groups: false)"


def _print_target(name: str, t: dict[str, Any], leaving: str) -> None:
    mark = "[green]in scope[/green]" if t["in_scope"] else "[yellow]out of scope[/yellow]"
    console.print(f"\n[bold]{name}[/bold]: {mark} — {shown(t['why'])}")
    for p in t["policies"]:
        value = "[green]true[/green]" if p["value"] else "[dim]false[/dim]"
        console.print(f"  {p['effect']:5} {p['policy']}: {shown(str(p['when']))} → {value}")
    if t["groups"]:
        console.print(f"  groups: {shown(', '.join(t['groups']))}")
    account = t["account"]
    console.print(
        f"  account: {shown(account['id'])} ({'active' if account['active'] else 'disabled'})"
        if account
        else "  account: none linked"
    )
    if account and not account["active"] and account.get("groups"):
        console.print(f"  [yellow]keeps groups while disabled[/yellow]: {shown(', '.join(account['groups']))}")
    console.print(f"  {leaving}")
    if t["waiting_for_manager"]:
        console.print(
            f"  manager {shown(t['waiting_for_manager'])} has no account here yet: written once they have one"
        )
    for r in t.get("approvals", []):
        state = (
            "[yellow]waits for approval[/yellow]"
            if r["state"] == "pending"
            else f"[green]approved[/green] by {shown(r['decided_by'])}"
        )
        console.print(
            f"  {state}: {shown(', '.join(r['grant']))} "
            f"(policy {shown(r['policy'])}, by {shown(r['by'])}, request {r['id']})"
            + (f", expires {r['expires_at']:%Y-%m-%d %H:%M} UTC" if r["state"] == "pending" else "")
        )
    for d in t["scheduled"]:
        console.print(f"  scheduled: {d['action']} at {d['effective_at']} UTC — {shown(d['reason'])}")
    for e in t["log"]:
        console.print(f"  log {e['time']:%Y-%m-%d %H:%M}: {e['action']} {e['result']} — {shown(e['reason'])}")
